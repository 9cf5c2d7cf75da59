import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import pino, { type Logger } from 'pino';
import type { EndpointTopology, Transport, TransportDefinition } from '../../../src/transport-core/index.js';
import { systemClock } from '../../../src/transport-core/index.js';
import {
  type RabbitmqTransportConfig,
  type RabbitmqTransportConfigInput,
  RabbitmqTransportConfigSchema,
  rabbitmqTransport,
} from '../../../transports/rabbitmq/index.js';

export const RABBITMQ_URL = 'amqp://guest:guest@127.0.0.1:5672';
const run = promisify(execFile);

/** Runs `rabbitmqctl` with arguments; resolves with stdout. */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 120_000 });
  return stdout;
}

/** A name no other test (or test run) uses. */
export function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * A definition that remembers every endpoint its transports declare, so that a test can delete
 * the queues and exchanges it created (`cleanup`). Delay queues expire on their own.
 */
export function trackedRabbitmq(overrides: Partial<RabbitmqTransportConfigInput> = {}): {
  definition: TransportDefinition<RabbitmqTransportConfig>;
  config: RabbitmqTransportConfigInput;
  connect(logger?: Logger): Promise<Transport>;
  cleanup(): Promise<void>;
} {
  const inner = rabbitmqTransport();
  const declared: EndpointTopology[] = [];
  const definition: TransportDefinition<RabbitmqTransportConfig> = {
    ...inner,
    create(config, deps) {
      const transport = inner.create(config, deps);
      const declare = transport.declare.bind(transport);
      transport.declare = async (topology) => {
        declared.push(topology);
        await declare(topology);
      };
      return transport;
    },
  };
  const config: RabbitmqTransportConfigInput = { kind: 'rabbitmq', url: RABBITMQ_URL, ...overrides };
  return {
    definition,
    config,
    async connect(logger = pino({ level: 'silent' })) {
      const transport = definition.create(RabbitmqTransportConfigSchema.parse(config), { logger, clock: systemClock });
      await transport.connect();
      return transport;
    },
    async cleanup() {
      await deleteTopology(declared.splice(0));
    },
  };
}

/** Deletes endpoint queues, their dead-letter queues and the exchanges of their message types. */
export async function deleteTopology(topologies: readonly EndpointTopology[]): Promise<void> {
  if (topologies.length === 0) return;
  const delayQueues = [...(await listQueues('')).keys()].filter((name) =>
    topologies.some((t) => name.startsWith(`${t.address}.delay.`)),
  );
  const connection = await amqp.connect(RABBITMQ_URL);
  try {
    for (const t of topologies) {
      for (const op of [
        (c: amqp.Channel) => c.deleteQueue(t.address),
        (c: amqp.Channel) => c.deleteQueue(`${t.address}.dlq`),
        ...t.messageTypes.map((type) => (c: amqp.Channel) => c.deleteExchange(type)),
        ...delayQueues
          .filter((q) => q.startsWith(`${t.address}.delay.`))
          .map((q) => (c: amqp.Channel) => c.deleteQueue(q)),
      ]) {
        // One channel per operation: a failed delete closes its channel.
        const channel = await connection.createChannel();
        channel.on('error', () => {});
        await op(channel).catch(() => {});
        await channel.close().catch(() => {});
      }
    }
  } finally {
    await connection.close();
  }
}

/** Queue name → type and arguments, as the broker reports them. */
export async function listQueues(
  prefix: string,
): Promise<Map<string, { type: string; arguments: Record<string, unknown> }>> {
  const out = await rabbitmqctl('list_queues', '--quiet', '--formatter', 'json', 'name', 'type', 'arguments');
  const rows = JSON.parse(out) as { name: string; type: string; arguments: [string, string, unknown][] }[];
  return new Map(
    rows
      .filter((r) => r.name.startsWith(prefix))
      .map((r) => [r.name, { type: r.type, arguments: Object.fromEntries(r.arguments.map(([k, , v]) => [k, v])) }]),
  );
}
