import { describe, expectTypeOf, it } from 'vitest';
import {
  type CausedMessage,
  createBus,
  type ExplainEntry,
  type ExplainOptions,
  type Explanation,
  type HistoryOutcome,
  type LostTo,
  type MessageExplanation,
  memoryInbox,
} from '../../src/index.js';

// Checked by the type checker (`npm run typecheck`); the expect-error lines fail it if they compile.
describe('explain types', () => {
  it('types the timeline from the public entry, with no any', () => {
    const bus = createBus({ history: { enabled: true } }, { inbox: memoryInbox() });
    expectTypeOf(bus.explain).parameters.toEqualTypeOf<[key: string, options?: ExplainOptions]>();
    expectTypeOf(bus.explain).returns.resolves.toEqualTypeOf<Explanation>();
    expectTypeOf(bus.explainMessage).returns.resolves.toEqualTypeOf<MessageExplanation>();
    expectTypeOf<Explanation['entries'][number]>().toEqualTypeOf<ExplainEntry>();
    expectTypeOf<ExplainEntry['outcome']>().toEqualTypeOf<HistoryOutcome>();
    expectTypeOf<ExplainEntry['lostTo']>().toEqualTypeOf<LostTo | null>();
    expectTypeOf<ExplainEntry['caused'][number]>().toEqualTypeOf<CausedMessage>();
    expectTypeOf<ExplainEntry['summary']>().toBeString();
    expectTypeOf<ExplainEntry>().not.toBeAny();
    // @ts-expect-error: since is a Date
    void bus.explain('k', { since: '2026-11-30T10:00:00Z' });
  });
});
