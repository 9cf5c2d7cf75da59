import { defineTransport, type TransportDefinition } from '../../src/transport-core/index.js';
import { type KafkaTransportConfig, KafkaTransportConfigSchema } from './kafka-config.js';
import { KafkaTransport } from './kafka-transport.js';

/**
 * The Kafka transport (kafkajs 2.x): consumer groups with manual commits of settled offsets, a retry
 * topic per endpoint for delayed release, a dead-letter topic per endpoint with redrive, per-key
 * order within a partition, tombstones as tombstone envelopes. Register it with
 * `createBus(config, { transports: [kafkaTransport()] })` and `transport: { kind: 'kafka', ... }`.
 * Guarantees and differences from queue brokers: `docs/transports/kafka.md`.
 */
export function kafkaTransport(): TransportDefinition<KafkaTransportConfig> {
  return defineTransport({
    kind: 'kafka',
    configSchema: KafkaTransportConfigSchema,
    secretFields: ['sasl.password'],
    create: (config, deps) => new KafkaTransport(config, deps),
  });
}

export {
  type KafkaTransportConfig,
  type KafkaTransportConfigInput,
  KafkaTransportConfigSchema,
} from './kafka-config.js';
export { kafkaCapabilities } from './kafka-delivery.js';
export { KafkaTransport } from './kafka-transport.js';
export { OffsetTracker } from './offset-tracker.js';
