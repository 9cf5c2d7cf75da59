import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import pino from 'pino';
import { systemClock, type Transport } from '../../../src/transport-core/index.js';
import {
  type KafkaTransportConfigInput,
  KafkaTransportConfigSchema,
  kafkaTransport,
} from '../../../transports/kafka/index.js';
import { KAFKA_BROKERS } from '../../infra/kafka/kafka.mjs';

/** Test settings: low timeouts so that joins and rebalances are quick on the local broker. */
export const testKafkaConfig = {
  kind: 'kafka',
  brokers: KAFKA_BROKERS,
  clientId: 'sluice-it',
  sessionTimeoutMs: 6_000,
  rebalanceTimeoutMs: 6_000,
  heartbeatIntervalMs: 300,
  maxWaitTimeMs: 50,
  commitIntervalMs: 20,
  clientLogLevel: 'nothing',
} as const satisfies KafkaTransportConfigInput;

/** A connected Kafka transport with the test settings plus `overrides`. */
export async function connectKafka(overrides: Partial<KafkaTransportConfigInput> = {}): Promise<Transport> {
  const config = KafkaTransportConfigSchema.parse({ ...testKafkaConfig, ...overrides });
  const transport = kafkaTransport().create(config, { logger: pino({ level: 'silent' }), clock: systemClock });
  await transport.connect();
  return transport;
}

export const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** Runs `fn` with a connected kafkajs admin client. */
export async function withAdmin<T>(fn: (admin: kafkajs.Admin) => Promise<T>): Promise<T> {
  const admin = new kafkajs.Kafka({ brokers: KAFKA_BROKERS, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Lowers a topic's `max.message.bytes` (to make copies of large records not fit). */
export function limitMessageBytes(topic: string, bytes: number): Promise<void> {
  return withAdmin(async (admin) => {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: kafkajs.ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: [{ name: 'max.message.bytes', value: String(bytes) }],
        },
      ],
    });
  });
}
