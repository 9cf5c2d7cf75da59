import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { TransportError } from '../../../src/index.js';
import type { Delivery, Transport } from '../../../src/transport-core/index.js';
import { waitFor } from '../../support/wait-for.js';
import { listQueues, RABBITMQ_URL, trackedRabbitmq, unique } from './rabbitmq-test-kit.js';

const quorum = trackedRabbitmq({ queueType: 'quorum' });
const classic = trackedRabbitmq({ queueType: 'classic' });
const open: Transport[] = [];

async function consumerCount(queue: string): Promise<number> {
  const connection = await amqp.connect(RABBITMQ_URL);
  try {
    const channel = await connection.createChannel();
    return (await channel.checkQueue(queue)).consumerCount;
  } finally {
    await connection.close();
  }
}

const message = (messageType: string, body: string) => ({
  messageId: randomUUID(),
  body: Buffer.from(body),
  headers: {},
  contentType: 'text/plain',
  key: undefined,
  messageType,
});

describe('rabbitmq topology', () => {
  afterAll(async () => {
    await Promise.allSettled(open.map((t) => t.close()));
    await quorum.cleanup();
    await classic.cleanup();
  });

  it('instances starting at once on a new quorum queue all declare it and consume', async () => {
    // RabbitMQ 3.10 may answer a concurrent declare before the new queue's process runs; a consume
    // sent right after it then fails with INTERNAL_ERROR (541), which closes the connection. Raw
    // amqplib hits that (assertQueue + consume, 8 clients: 16 of 160 failed); the endpoint's
    // declare runs more steps before its consume, and this checks that it stays clear of it.
    for (let round = 0; round < 4; round++) {
      const transports = await Promise.all(Array.from({ length: 8 }, () => quorum.connect()));
      open.push(...transports);
      const address = unique('topo-race');
      const topology = { address, endpoint: address, messageTypes: [`topo.${address}.v1`] };
      const started = await Promise.allSettled(
        transports.map(async (t) => {
          await t.declare(topology);
          return t.consume(address, () => {}, { prefetch: 1 });
        }),
      );
      expect(started.filter((s) => s.status === 'rejected')).toEqual([]);
      let consumers = 0;
      await waitFor(
        async () => {
          consumers = await consumerCount(address);
          return consumers === transports.length;
        },
        { timeoutMs: 30_000, what: () => `${transports.length} consumers on ${address} (have ${consumers})` },
      );
      await Promise.all(transports.map((t) => t.close()));
    }
  }, 120_000);

  it('declares queue, dead-letter queue and type exchanges idempotently, twice and from a second transport', async () => {
    const t1 = await quorum.connect();
    const t2 = await quorum.connect();
    open.push(t1, t2);
    const address = unique('topo');
    const types = [`topo.${address}.a.v1`, `topo.${address}.b.v1`];
    const topology = { address, endpoint: address, messageTypes: types };
    await t1.declare(topology);
    await t1.declare(topology);
    await t2.declare(topology);

    const queues = await listQueues(address);
    expect([...queues.keys()].sort()).toEqual([address, `${address}.dlq`]);
    expect(queues.get(address)?.type).toBe('quorum');
    // Classic on purpose: a returned (peeked) message keeps its place only in a classic queue.
    expect(queues.get(`${address}.dlq`)?.type).toBe('classic');

    // Each type's exchange routes to the endpoint queue: one publish per type arrives once.
    const got: Delivery[] = [];
    await t2.consume(address, (d) => got.push(d), { prefetch: 10 });
    for (const type of types) await t1.publish(message(type, type));
    await waitFor(() => got.length === 2, { what: 'both publishes' });
    expect(got.map((d) => d.body.toString()).sort()).toEqual([...types].sort());
    await Promise.all(got.map((d) => d.complete()));
  });

  it('declares classic queues when configured, and refuses a queue that exists as another type', async () => {
    const tc = await classic.connect();
    const tq = await quorum.connect();
    open.push(tc, tq);
    const address = unique('topo-classic');
    await tc.declare({ address, endpoint: address, messageTypes: [] });
    const queues = await listQueues(address);
    expect(queues.get(address)?.type).toBe('classic');
    const error = await tq.declare({ address, endpoint: address, messageTypes: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).retryable).toBe(false);
    expect((error as Error).message).toMatch(/another queue type/);
    // The transport is still usable after the refused declaration.
    const again = unique('topo-after');
    await tq.declare({ address: again, endpoint: again, messageTypes: [] });
    await tq.send(again, message('topo.any.v1', 'still-works'));
  });

  it('fails a send to a queue that does not exist instead of dropping it', async () => {
    const t = await quorum.connect();
    open.push(t);
    const error = await t.send(unique('nowhere'), message('topo.any.v1', 'lost?')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect((error as Error).message).toMatch(/no queue/);
  });

  it('creates one delay queue per delay bucket that dead-letters back to the endpoint queue', async () => {
    const t = await quorum.connect();
    open.push(t);
    const address = unique('topo-delay');
    await t.declare({ address, endpoint: address, messageTypes: [] });
    const got: Delivery[] = [];
    await t.consume(address, (d) => got.push(d), { prefetch: 10 });
    await t.send(address, message('topo.any.v1', 'x'));
    await waitFor(() => got.length === 1, { what: 'first delivery' });
    await got[0]?.release({ delayMs: 1234 });
    const queues = await listQueues(`${address}.delay.`);
    const delay = queues.get(`${address}.delay.1300`);
    expect(delay?.arguments['x-message-ttl']).toBe(1300);
    expect(delay?.arguments['x-dead-letter-routing-key']).toBe(address);
    expect(delay?.arguments['x-dead-letter-exchange']).toBe('');
    expect(Number(delay?.arguments['x-expires'])).toBeGreaterThan(1300);
    await waitFor(() => got.length === 2, { what: 'delayed redelivery', timeoutMs: 10_000 });
    expect(got[1]?.deliveryCount).toBe(2);
    await got[1]?.complete();
  });
});
