import { createDeferred } from '../../src/transport-core/index.js';

/** `accept`: a completion; `other`: abandon, dead-letter (outcomes that carry their own fields). */
export type SettlementKind = 'accept' | 'other';

interface Group {
  readonly kind: SettlementKind;
  readonly start: Promise<void>;
  pending: number;
  closed: boolean;
  readonly idle: Promise<void>;
  resolveIdle: () => void;
}

/**
 * Orders the settlements of one receiver link so that no two dispositions with different outcomes
 * are ever written to the AMQP session in the same tick.
 *
 * Why: rhea (3.0.5, under the SDK) coalesces the pending dispositions of a session into ranges, and
 * never compares the outcome of the first two consecutive delivery ids: a completion and an abandon
 * (or a dead-letter) settled together on adjacent deliveries both get the first one's outcome. That
 * turns a dead-letter into a completion (a lost message) or a completion into an abandon. Here,
 * consecutive completions run together (accepted outcomes merge correctly); any other settlement
 * waits until everything before it was acknowledged, runs alone, and is acknowledged before the
 * next group starts.
 */
export class SettlementSequencer {
  #last: Group | undefined;

  run<T>(kind: SettlementKind, operation: () => Promise<T>): Promise<T> {
    const last = this.#last;
    const group = kind === 'accept' && last?.kind === 'accept' && !last.closed ? last : this.#open(kind, last);
    group.pending++;
    const done = () => {
      group.pending--;
      if (group.closed && group.pending === 0) group.resolveIdle();
    };
    return group.start.then(operation).finally(done);
  }

  #open(kind: SettlementKind, previous: Group | undefined): Group {
    if (previous) {
      previous.closed = true;
      if (previous.pending === 0) previous.resolveIdle();
    }
    const idle = createDeferred<void>();
    const group: Group = {
      kind,
      start: previous ? previous.idle : Promise.resolve(),
      pending: 0,
      closed: kind === 'other',
      idle: idle.promise,
      resolveIdle: idle.resolve,
    };
    this.#last = group;
    return group;
  }
}
