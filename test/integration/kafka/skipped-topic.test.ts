import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, createBus, defineMessage } from '../../../src/index.js';
import type { Delivery } from '../../../src/transport-core/index.js';
import { kafkaTransport } from '../../../transports/kafka/index.js';
import { waitFor } from '../../support/wait-for.js';
import { testKafkaConfig, unique, withAdmin } from './kafka-fixture.js';

describe('kafka: unknownTypes skippedQueue', () => {
  const buses: Bus[] = [];
  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.stop()));
  });

  it('creates the skipped topic when the endpoint is declared and moves an unknown type there', async () => {
    // Before: the skipped topic existed only if the broker auto-created it on the first forward
    // (auto.create.topics.enable, off on most production clusters).
    const Known = defineMessage(`skip.${unique('known')}.v1`, z.object({}));
    const Unknown = defineMessage(`skip.${unique('unknown')}.v1`, z.object({}));
    const bus = createBus(
      { service: 'skip', transport: testKafkaConfig, shutdown: { signals: [], timeoutMs: 2_000 } },
      { transports: [kafkaTransport()], logger: pino({ level: 'silent' }) },
    );
    buses.push(bus);
    const endpoint = unique('skip');
    bus.endpoint(endpoint, { unknownTypes: 'skippedQueue' }).handle(Known, async () => {});
    await bus.start();
    // Declared by start, before anything was forwarded.
    expect(await withAdmin((admin) => admin.listTopics())).toContain(`${endpoint}.skipped`);

    const id = await bus.send(endpoint, Unknown, {});
    await waitFor(() => bus.health().endpoints[endpoint]?.counters.skipped === 1, {
      timeoutMs: 20_000,
      what: 'skipped',
    });
    const moved = await new Promise<Delivery>((resolve) => {
      void bus.transport.consume(`${endpoint}.skipped`, resolve, { prefetch: 1 });
    });
    expect(JSON.parse(moved.body.toString()).id).toBe(id);
    expect(moved.headers['sluice-skip-reason']).toBe('unknown-type');
    await moved.complete();
  }, 60_000);
});
