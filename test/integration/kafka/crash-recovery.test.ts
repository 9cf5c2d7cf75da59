import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cloudEventsCodec, createBus, createEnvelope, defineMessage } from '../../../src/index.js';
import { kafkaTransport } from '../../../transports/kafka/index.js';
import { ensureKafka } from '../../infra/kafka/kafka.mjs';
import { waitFor } from '../../support/wait-for.js';
import { connectKafka, testKafkaConfig, unique } from './kafka-fixture.js';

const CHILD = fileURLToPath(new URL('./fixtures/consumer-process.ts', import.meta.url));

describe('kafka: a consumer process killed mid-stream', () => {
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    await ensureKafka();
  }, 180_000);

  afterAll(() => {
    try {
      if (child?.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  });

  it('loses nothing: after SIGKILL a new member of the group handles every message at least once', async () => {
    const endpoint = unique('crash');
    const type = `it.crash-${endpoint}.v1`;
    const total = 400;
    const producer = await connectKafka();
    await producer.declare({ address: endpoint, endpoint, messageTypes: [type] });
    for (let seq = 0; seq < total; seq++) {
      const envelope = createEnvelope(type, 'crash-test', { seq }, { key: `k${seq % 10}` });
      await producer.send(endpoint, {
        messageId: envelope.id,
        body: cloudEventsCodec.encode(envelope),
        headers: {},
        contentType: cloudEventsCodec.contentType,
        key: envelope.key,
        messageType: type,
      });
    }

    const handledByChild = new Set<number>();
    // Its own process group, so that SIGKILL reaches the node process under npx and tsx too.
    child = spawn('npx', ['tsx', CHILD, endpoint, type], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const [word, seq] = line.split(' ');
        if (word === 'handled') handledByChild.add(Number(seq));
      }
    });
    await waitFor(() => handledByChild.size >= 60, { timeoutMs: 60_000, what: 'the child handling 60 messages' });
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    process.kill(-(child.pid as number), 'SIGKILL');
    await exited;
    const killedAfter = handledByChild.size;
    expect(killedAfter).toBeLessThan(total);

    // A new member of the same group: it waits for the dead member's session to expire, then reads
    // everything the dead one had not committed.
    const Item = defineMessage(type, z.object({ seq: z.number() }));
    const handledAfter = new Map<number, number>();
    const bus = createBus(
      { service: 'crash-successor', transport: { ...testKafkaConfig }, shutdown: { signals: [], timeoutMs: 2_000 } },
      { transports: [kafkaTransport()], logger: (await import('pino')).pino({ level: 'silent' }) },
    );
    bus.endpoint(endpoint, { concurrency: 8, retry: { kind: 'none' } }).handle(Item, async (m, ctx) => {
      handledAfter.set(m.seq, Math.max(handledAfter.get(m.seq) ?? 0, ctx.deliveryCount));
    });
    await bus.start();
    try {
      await waitFor(
        () => {
          for (let seq = 0; seq < total; seq++) if (!handledByChild.has(seq) && !handledAfter.has(seq)) return false;
          return true;
        },
        { timeoutMs: 60_000, what: 'every message handled by one of the two processes' },
      );
      // Records the dead member had handed out come again, counted as redeliveries by the group mark:
      // at least message 30, whose handler in the child never returned (so its offset was never
      // committed), and whatever else was still uncommitted when the child died.
      expect(handledByChild.has(30)).toBe(true);
      expect(handledAfter.get(30)).toBeGreaterThanOrEqual(2);
    } finally {
      await bus.stop();
      await producer.close();
    }
  }, 120_000);
});
