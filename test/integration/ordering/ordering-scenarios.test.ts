import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, createBus, createMemoryBroker, memoryTransport, RegistrationError } from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { EntityUpdated, type Harness, type HarnessOptions, STORE_KINDS, startHarness, stamp } from './harness.js';

const update = (id: string, key: string, ms: number, value = 1, offset: 'Z' | '+01:00' | '-05:30' = 'Z') => ({
  id,
  key,
  occurredAt: stamp(ms, 0, offset),
  tombstone: false,
  value,
});
const tombstone = (id: string, key: string, ms: number) => ({
  id,
  key,
  occurredAt: stamp(ms, 0),
  tombstone: true,
  value: 0,
});

for (const kind of STORE_KINDS) {
  describe(`ordering scenarios on ${kind}`, () => {
    let h: Harness | undefined;
    const start = async (options?: HarnessOptions) => {
      h = await startHarness(kind, options);
      return h;
    };
    afterEach(async () => {
      await h?.stop();
      h = undefined;
    });

    it('keeps a deleted entity deleted when an older update arrives after its tombstone', async () => {
      const t = await start();
      await t.send(update('u1', 'k', 1, 10));
      await t.settled(1);
      await t.send(tombstone('d1', 'k', 3));
      await t.settled(1);
      await t.send(update('u2', 'k', 2, 20));
      await t.settled(1);
      expect((await t.state()).get('k')).toMatchObject({ deleted: true, messageId: 'd1' });
      expect(t.tombstonesSeen).toEqual([{ key: 'k', id: 'd1' }]);
      expect((await t.bus.inbox?.find('entities', 'u2'))?.outcome).toBe('stale');
      const counters = t.bus.health().endpoints.entities?.counters;
      expect(counters?.skippedByReason).toEqual({ stale: 1 });
      const line = t.logs.find((l) => l.reason === 'stale');
      expect(line).toMatchObject({
        level: 30,
        orderingKey: 'k',
        occurredAt: stamp(2, 0),
        lastAppliedAt: stamp(3, 0),
        lastMessageId: 'd1',
        lastTombstone: true,
      });
      // Nothing expired yet: the bus's cleanup runs the tombstone cleanup without deleting it.
      await t.bus.cleanupInbox();
      await t.send(update('u3', 'k', 0));
      await t.settled(1);
      expect((await t.state()).get('k')).toMatchObject({ deleted: true });
    });

    it('brings a deleted entity back with a newer update when resurrection is allowed (the default)', async () => {
      const t = await start();
      await t.send(tombstone('d1', 'k', 3));
      await t.settled(1);
      await t.send(update('u2', 'k', 4, 7));
      await t.settled(1);
      expect((await t.state()).get('k')).toMatchObject({ deleted: false, value: 7 });
    });

    it('refuses a newer update after a tombstone when resurrection is rejected', async () => {
      const t = await start({ endpoint: { ordering: { enabled: true, tombstones: { resurrect: 'reject' } } } });
      await t.send(tombstone('d1', 'k', 3));
      await t.settled(1);
      await t.send(update('u2', 'k', 4, 7));
      await t.settled(1);
      expect((await t.state()).get('k')).toMatchObject({ deleted: true, messageId: 'd1' });
      expect((await t.bus.inbox?.find('entities', 'u2'))?.outcome).toBe('tombstoned');
      expect(t.bus.health().endpoints.entities?.counters.skippedByReason).toEqual({ tombstoned: 1 });
    });

    it('applies the higher message id of two events with the same instant, whatever the arrival order', async () => {
      const t = await start();
      // Same instant written in other offsets; "…-b" > "…-a", so "…-b" is the later one.
      await t.send(update('x-b', 'x', 1, 2, '+01:00'));
      await t.settled(1);
      await t.send(update('x-a', 'x', 1, 1, 'Z'));
      await t.settled(1);
      await t.send(update('y-a', 'y', 1, 1, '-05:30'));
      await t.settled(1);
      await t.send(update('y-b', 'y', 1, 2, 'Z'));
      await t.settled(1);
      const state = await t.state();
      expect(state.get('x')).toMatchObject({ messageId: 'x-b', value: 2 });
      expect(state.get('y')).toMatchObject({ messageId: 'y-b', value: 2 });
      expect((await t.bus.inbox?.find('entities', 'x-a'))?.outcome).toBe('stale');
    });

    it('compares at nanosecond precision', async () => {
      const t = await start();
      await t.send({ id: 'n2', key: 'n', occurredAt: stamp(1, 2), tombstone: false, value: 2 });
      await t.settled(1);
      await t.send({ id: 'n9', key: 'n', occurredAt: stamp(1, 1), tombstone: false, value: 1 });
      await t.settled(1);
      expect((await t.state()).get('n')).toMatchObject({ messageId: 'n2' });
    });

    it('dead-letters a stale event when the policy says so, and records nothing for it', async () => {
      const t = await start({ endpoint: { ordering: { enabled: true, stalePolicy: 'deadLetter' } } });
      await t.send(update('u2', 'k', 2));
      await t.settled(1);
      await t.send(update('u1', 'k', 1));
      await t.settled(1);
      const dead = await t.bus.deadLetters('entities').peek(10);
      expect(dead.map((d) => d.fault?.reason)).toEqual(['stale']);
      expect(await t.bus.inbox?.find('entities', 'u1')).toBeUndefined();
    });

    it('dead-letters an event stamped beyond the allowed clock skew when the policy rejects it', async () => {
      const t = await start({
        endpoint: { ordering: { enabled: true, futureSkewMs: 60_000, futurePolicy: 'reject' } },
      });
      const future = new Date(Date.now() + 3_600_000).toISOString();
      await t.send({ id: 'f1', key: 'k', occurredAt: future, tombstone: false, value: 1 });
      await t.settled(1);
      const dead = await t.bus.deadLetters('entities').peek(10);
      expect(dead.map((d) => d.fault?.reason)).toEqual(['future-timestamp']);
    });

    it('skips a tombstone of a type without a tombstone handler instead of dead-lettering it as a schema violation', async () => {
      const t = await start({ tombstoneHandler: false });
      await t.send(tombstone('d1', 'k', 3));
      await t.settled(1);
      expect(t.bus.health().endpoints.entities?.counters.skippedByReason).toEqual({ tombstoned: 1 });
      expect(await t.bus.deadLetters('entities').count()).toBe(0);
    });

    it('passes tombstones to onTombstone with ordering off for the type, never to the normal handler', async () => {
      const t = await start({ handle: { ordering: false } });
      // One after the other: without ordering the two would race, and the test would depend on which won.
      await t.send(tombstone('d1', 'k', 3));
      await t.settled(1);
      await t.send(update('u1', 'k', 1, 5));
      await t.settled(1);
      expect(t.tombstonesSeen).toEqual([{ key: 'k', id: 'd1' }]);
      // Without the guard the older update is applied after the deletion.
      await waitFor(async () => (await t.state()).get('k')?.messageId === 'u1');
    });
  });
}

describe('ordering configuration', () => {
  const silent = pino({ level: 'silent' });

  it('fails at start with a ConfigError naming the field when ordering is on without an inbox', async () => {
    const bus = createBus(
      { shutdown: { signals: [] } },
      { transports: [memoryTransport({ broker: createMemoryBroker() })], logger: silent },
    );
    bus.endpoint('entities', { ordering: { enabled: true } }).handle(EntityUpdated, () => {});
    const error = await bus.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues[0]).toMatch(
      /^endpoints\.entities\.ordering\.enabled: the ordering guard needs the inbox/,
    );
  });

  it('refuses a batch handler on an endpoint with ordering, unless the batch opts out', () => {
    const bus = createBus({}, { logger: silent });
    const endpoint = bus.endpoint('entities', { ordering: { enabled: true } });
    expect(() => endpoint.handleBatch(EntityUpdated, () => {})).toThrow(RegistrationError);
    expect(() => endpoint.handleBatch(EntityUpdated, () => {}, { ordering: false })).not.toThrow();
  });

  it('names the field of an invalid ordering setting', () => {
    expect(() =>
      createBus({}, { logger: silent }).endpoint('e', { ordering: { stalePolicy: 'drop' as never } }),
    ).toThrow(/endpoints\.e\.ordering\.stalePolicy/);
    expect(() =>
      createBus({}, { logger: silent })
        .endpoint('e')
        .handle(EntityUpdated, () => {}, { ordering: { futurePolicy: 'maybe' as never } }),
    ).toThrow(/ordering\.futurePolicy/);
  });
});
