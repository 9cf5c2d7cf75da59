import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { systemClock, type Transport } from '../../../src/transport/index.js';
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
