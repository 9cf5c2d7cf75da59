import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, type ConsumerChange, createBus, defineMessage } from '../../../src/index.js';
import { notReadyBecause } from '../../../src/health/health-handler.js';
import { waitFor } from '../../support/wait-for.js';
import { RABBITMQ_URL, rabbitmqctl, trackedRabbitmq, unique } from './rabbitmq-test-kit.js';

// Issue 19 item 6 on RabbitMQ: the two deaths that leave the connection up (so no reconnection
// brings the consumer back). Everything here touches only this file's own user, queues and channels:
// the user is unique, so its channels are this test's alone.
const user = unique('sluice-restart-user');
const password = `Pw-${randomUUID()}`;
const rabbit = trackedRabbitmq({
  url: `amqp://${user}:${encodeURIComponent(password)}@127.0.0.1:5672`,
  publishTimeoutMs: 5_000,
});
const Ping = defineMessage('it.rabbit-restart.ping.v1', z.object({ n: z.string() }));
const buses: Bus[] = [];

/** A bus whose endpoint records what it handled and what readiness said when its consumer went down. */
async function startBus() {
  const endpoint = unique('restart');
  const bus = createBus(
    {
      service: 'rabbit-restart',
      transport: rabbit.config,
      endpoints: { [endpoint]: { consumerRestart: { initialDelayMs: 100, maxDelayMs: 1_000 } } },
      shutdown: { signals: [], timeoutMs: 2_000 },
    },
    { transports: [rabbit.definition], logger: pino({ level: 'silent' }) },
  );
  buses.push(bus);
  const seen = new Set<string>();
  bus.endpoint(endpoint).handle(Ping, async (m) => {
    seen.add(m.n);
  });
  const downs: { change: ConsumerChange; ready: string[] }[] = [];
  bus.on('consumer.down', (change) => {
    downs.push({ change, ready: notReadyBecause(bus.health(), false) });
  });
  await bus.start();
  const sendAndSee = async (n: string) => {
    await bus.send(endpoint, Ping, { n });
    await waitFor(() => seen.has(n), {
      timeoutMs: 15_000,
      what: () => `${n} handled; consumer: ${JSON.stringify(bus.health().endpoints[endpoint]?.consumer)}`,
    });
  };
  const consumer = () => bus.health().endpoints[endpoint]?.consumer;
  return { bus, endpoint, downs, seen, sendAndSee, consumer };
}

/** Runs `work` on a channel of a connection of the default user (not this test's). */
async function asAdmin(work: (channel: amqp.Channel) => Promise<unknown>): Promise<void> {
  const connection = await amqp.connect(RABBITMQ_URL);
  try {
    const channel = await connection.createChannel();
    await work(channel);
  } finally {
    await connection.close();
  }
}

/**
 * Makes the broker close this test's consumer channels with a channel error, the connection staying
 * up: each channel is made to process an ack of a delivery tag it never sent, as a client with a
 * double-ack bug would (406 PRECONDITION_FAILED, unknown delivery tag).
 */
async function failOurChannels(): Promise<number> {
  const out = await rabbitmqctl(
    'eval',
    `length([rabbit_channel:do(P, {'basic.ack', 987654321, false}) || P <- rabbit_channel:list_local(),` +
      ` proplists:get_value(user, rabbit_channel:info(P, [user])) =:= <<"${user}">>]).`,
  );
  return Number.parseInt(out.trim(), 10);
}

describe('rabbitmq: a consumer the broker stops is made again', () => {
  beforeAll(async () => {
    await rabbitmqctl('add_user', user, password);
    await rabbitmqctl('set_permissions', '-p', '/', user, '.*', '.*', '.*');
  });
  afterEach(async () => {
    await Promise.allSettled(buses.splice(0).map((b) => b.stop()));
    await rabbitmqctl('set_permissions', '-p', '/', user, '.*', '.*', '.*');
  });
  afterAll(async () => {
    await rabbit.cleanup();
    await rabbitmqctl('delete_user', user).catch(() => {});
  });

  it('consumes again after the broker cancels it (queue deleted): declares the queue again; not ready meanwhile', async () => {
    const { endpoint, downs, sendAndSee, consumer } = await startBus();
    await sendAndSee('before');
    await asAdmin((channel) => channel.deleteQueue(endpoint));
    await waitFor(() => consumer()?.restarts === 1, { timeoutMs: 10_000, what: 'the consumer made again' });
    await sendAndSee('after');
    expect(downs).toHaveLength(1);
    expect(downs[0]?.change.reason).toMatch(/cancelled the consumer of queue/);
    expect(downs[0]?.ready).toContainEqual(expect.stringMatching(`^endpoint ${endpoint}: consumer restarting since `));
    expect(consumer()).toMatchObject({ state: 'consuming', restarts: 1 });
  });

  it('consumes again after the broker closes its channel for an error while the connection stays', async () => {
    const { bus, endpoint, downs, sendAndSee, consumer } = await startBus();
    await sendAndSee('before');
    expect(await failOurChannels()).toBeGreaterThan(0);
    await waitFor(() => consumer()?.restarts === 1, { timeoutMs: 10_000, what: 'the consumer made again' });
    await sendAndSee('after');
    expect(downs[0]?.change.reason).toMatch(/PRECONDITION_FAILED - unknown delivery tag 987654321/);
    expect(downs[0]?.ready).toContainEqual(expect.stringMatching(`^endpoint ${endpoint}: consumer restarting since `));
    expect(bus.health().transport.state).toBe('connected'); // the connection never went
  });

  it('keeps trying while it cannot consume again, says why in health, and comes back when it can', async () => {
    const { bus, endpoint, seen, sendAndSee, consumer } = await startBus();
    await sendAndSee('before');
    await rabbitmqctl('set_permissions', '-p', '/', user, '^$', '^$', '^$');
    await asAdmin((channel) => channel.deleteQueue(endpoint));
    await waitFor(() => (consumer()?.failedAttempts ?? 0) >= 2, { timeoutMs: 10_000, what: 'failed restarts' });
    const down = consumer();
    expect(down).toMatchObject({ state: 'restarting', paused: false });
    expect(down?.reason).toMatch(/cancelled the consumer/);
    expect(down?.lastAttemptError).toMatch(/ACCESS_REFUSED/);
    expect(down?.nextAttemptAt).toBeDefined();
    expect(notReadyBecause(bus.health(), false)).toContainEqual(
      expect.stringMatching(`^endpoint ${endpoint}: consumer restarting since .*, \\d+ restart attempts failed$`),
    );

    // The kill switch trips meanwhile: the consumer made next must start paused.
    bus.killSwitch(endpoint).trip('maintenance');
    await rabbitmqctl('set_permissions', '-p', '/', user, '.*', '.*', '.*');
    await waitFor(() => consumer()?.state === 'consuming', { timeoutMs: 10_000, what: 'the consumer made again' });
    expect(consumer()?.paused).toBe(true);
    await bus.send(endpoint, Ping, { n: 'while-tripped' });
    await asAdmin(async (channel) => {
      // Made paused: it never subscribed, so the message waits in the queue.
      expect(await channel.checkQueue(endpoint)).toMatchObject({ messageCount: 1, consumerCount: 0 });
    });
    bus.killSwitch(endpoint).reset();
    await sendAndSee('after-reset');
    expect(seen.has('while-tripped')).toBe(true);
    expect(notReadyBecause(bus.health(), false)).toEqual([]);
  });
});
