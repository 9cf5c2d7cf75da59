import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, type ConsumerChange, defineMessage } from '../../../src/index.js';
import { notReadyBecause } from '../../../src/health/health-handler.js';
import { waitFor } from '../../support/wait-for.js';
import { type ServiceBusFixture, startServiceBusFixture } from './servicebus-fixture.js';

// Issue 19 item 6 on Service Bus. The SDK restores a receiver by itself, retrying forever, even
// when retrying cannot help (its queue deleted): that receiver is silently dead. A retried error is
// shown (reconnecting) until the link is attached again; one that retrying cannot fix stops the
// consumer, and the endpoint makes a new one, declaring the queue first.
const Ping = defineMessage('it.sb-restart.ping.v1', z.object({ n: z.string() }));
const restart = { consumerRestart: { initialDelayMs: 100, maxDelayMs: 500 } };

function watch(bus: Bus, endpoint: string) {
  const seen = new Set<string>();
  bus.endpoint(endpoint, restart).handle(Ping, async (m) => {
    seen.add(m.n);
  });
  const events: { event: string; change: ConsumerChange; ready: string[] }[] = [];
  for (const event of ['consumer.down', 'consumer.up'] as const) {
    bus.on(event, (change) => {
      events.push({ event, change, ready: notReadyBecause(bus.health(), false) });
    });
  }
  const consumer = () => bus.health().endpoints[endpoint]?.consumer;
  const sendAndSee = async (n: string) => {
    await bus.send(endpoint, Ping, { n });
    await waitFor(() => seen.has(n), {
      timeoutMs: 15_000,
      what: () => `${n} handled; consumer: ${JSON.stringify(consumer())}`,
    });
  };
  return { events, consumer, sendAndSee };
}

describe('Service Bus: a consumer that stops receiving is made again, or shown reconnecting', () => {
  let f: ServiceBusFixture | undefined;
  afterEach(async () => {
    await f?.close();
    f = undefined;
  });

  it('consumes again after its queue is deleted (MessagingEntityNotFound): creates it again; not ready meanwhile', async () => {
    f = await startServiceBusFixture();
    const bus = f.bus('sb-restart');
    const endpoint = `restart-${randomUUID().slice(0, 8)}`;
    const { events, consumer, sendAndSee } = watch(bus, endpoint);
    await bus.start();
    await sendAndSee('before');

    f.emulator.deleteQueue(endpoint);
    await waitFor(() => consumer()?.restarts === 1, { timeoutMs: 10_000, what: 'the consumer made again' });
    await sendAndSee('after');
    const down = events.find((e) => e.event === 'consumer.down');
    expect(down?.change.reason).toMatch(/MessagingEntityNotFound|could not be found/);
    expect(down?.ready).toContainEqual(expect.stringMatching(`^endpoint ${endpoint}: consumer restarting since `));
    expect(notReadyBecause(bus.health(), false)).toEqual([]);
  });

  it('with entities verify: keeps trying, shows why in health, and consumes once the queue is back', async () => {
    f = await startServiceBusFixture();
    const endpoint = `verify-${randomUUID().slice(0, 8)}`;
    // The entities exist before a `verify` bus starts (created here by a `create` bus).
    const creator = f.bus('sb-creator');
    creator.endpoint(endpoint).handle(Ping, async () => {});
    await creator.start();
    await creator.stop();

    const bus = f.bus('sb-restart', { entities: 'verify' });
    const { consumer, sendAndSee } = watch(bus, endpoint);
    await bus.start();
    await sendAndSee('before');
    f.emulator.deleteQueue(endpoint);
    await waitFor(() => (consumer()?.failedAttempts ?? 0) >= 2, { timeoutMs: 10_000, what: 'failed restarts' });
    expect(consumer()).toMatchObject({ state: 'restarting' });
    expect(consumer()?.lastAttemptError).toMatch(`queue "${endpoint}" does not exist`);
    expect(notReadyBecause(bus.health(), false)).toContainEqual(
      expect.stringMatching(`^endpoint ${endpoint}: consumer restarting since .*, \\d+ restart attempts failed$`),
    );

    f.emulator.createQueue({ name: endpoint });
    await waitFor(() => consumer()?.state === 'consuming', { timeoutMs: 10_000, what: 'the consumer made again' });
    await sendAndSee('after');
    expect(notReadyBecause(bus.health(), false)).toEqual([]);
  });

  it('shows a forced detach as reconnecting until the SDK attaches again, without making a new consumer', async () => {
    f = await startServiceBusFixture();
    const bus = f.bus('sb-restart');
    const endpoint = `detach-${randomUUID().slice(0, 8)}`;
    const { events, consumer, sendAndSee } = watch(bus, endpoint);
    await bus.start();
    await sendAndSee('before');

    expect(f.emulator.forceDetach(endpoint)).toBe(1);
    await waitFor(() => events.some((e) => e.event === 'consumer.up'), {
      timeoutMs: 15_000,
      what: () => `receiving again; consumer: ${JSON.stringify(consumer())}`,
    });
    await sendAndSee('after');
    expect(events.map((e) => e.event)).toEqual(['consumer.down', 'consumer.up']);
    expect(events[0]?.change.reason).toMatch(/detach/i);
    expect(events[0]?.ready).toContainEqual(
      expect.stringMatching(`^endpoint ${endpoint}: consumer reconnecting since `),
    );
    expect(events[1]?.ready).toEqual([]);
    expect(consumer()).toMatchObject({ state: 'consuming', restarts: 0 });
  });
});
