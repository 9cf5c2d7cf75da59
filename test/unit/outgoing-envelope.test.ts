import fc from 'fast-check';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  createBus,
  createMemoryBroker,
  defineMessage,
  InvalidOutgoingMessageError,
  memoryTransport,
} from '../../src/index.js';
import { cloudEventsCodec, createEnvelope } from '../../src/envelope/cloudevents-codec.js';
import type { EnvelopeOptions } from '../../src/envelope/envelope.js';
import { waitFor } from '../support/wait-for.js';

const Note = defineMessage('tests.note.v1', z.object({ text: z.string() }));

describe('publish and send apply the envelope rules their consumers enforce', () => {
  const buses: Bus[] = [];
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.stop()));
  });

  async function started(): Promise<{ bus: Bus; received: string[]; deadLettered: () => number }> {
    const bus = createBus(
      { shutdown: { signals: [], timeoutMs: 1_000 } },
      { transports: [memoryTransport({ broker: createMemoryBroker() })], logger: pino({ level: 'silent' }) },
    );
    buses.push(bus);
    const received: string[] = [];
    bus.endpoint('notes').handle(Note, async (m) => {
      received.push(m.text);
    });
    await bus.start();
    return { bus, received, deadLettered: () => bus.health().endpoints.notes?.counters.deadLettered ?? 0 };
  }

  it.each<[string, EnvelopeOptions, RegExp]>([
    ['a key over 1,024 characters', { key: 'k'.repeat(1_025) }, /key: .*1024/],
    ['an empty key', { key: '' }, /key: /],
    ['an id over 256 characters', { id: 'i'.repeat(257) }, /id: .*256/],
    ['an empty id', { id: '' }, /id: /],
    ['a correlationId over 256 characters', { correlationId: 'c'.repeat(257) }, /correlationId: .*256/],
    ['a causationId over 256 characters', { causationId: 'c'.repeat(257) }, /causationId: .*256/],
    ['a local-time occurredAt', { occurredAt: '2026-11-22T10:00:00' }, /occurredAt .*offset/],
  ])('refuses %s at publish and at send; nothing reaches the consumer', async (_what, options, rule) => {
    // Before: accepted by publish, then dead-lettered by the consumer as invalid-envelope.
    const { bus, received, deadLettered } = await started();
    for (const attempt of [
      () => bus.publish(Note, { text: 'bad' }, options),
      () => bus.send('notes', Note, { text: 'bad' }, options),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidOutgoingMessageError);
      expect((error as InvalidOutgoingMessageError).retryable).toBe(false);
      expect((error as Error).message).toMatch(rule);
    }
    // The bus still sends valid messages, and the consumer saw only those.
    await bus.send('notes', Note, { text: 'good' }, { key: 'k'.repeat(1_024), id: 'i'.repeat(256) });
    await waitFor(() => received.length === 1, { what: 'the valid message' });
    expect(received).toEqual(['good']);
    expect(deadLettered()).toBe(0);
  });

  it('the producer check and the consumer decode agree on every envelope', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 3 }),
      fc.constantFrom('', 'a'.repeat(256), 'a'.repeat(257), 'a'.repeat(1024), 'a'.repeat(1025)),
    );
    const optional = fc.option(text, { nil: undefined });
    fc.assert(
      fc.property(
        fc.record({
          id: text,
          type: text,
          source: text,
          key: optional,
          correlationId: optional,
          causationId: optional,
        }),
        ({ id, type, source, ...options }) => {
          const envelope = createEnvelope(type, source, { n: 1 }, { id, ...options });
          const checked = cloudEventsCodec.check?.(envelope);
          const decoded = cloudEventsCodec.decode(cloudEventsCodec.encode(envelope));
          expect(checked === undefined).toBe(decoded.ok);
          if (checked && !decoded.ok) expect(checked.reason).toBe(decoded.reason);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
