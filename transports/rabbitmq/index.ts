import { defineTransport, type TransportDefinition } from '../../src/transport-core/index.js';
import { type RabbitmqTransportConfig, RabbitmqTransportConfigSchema } from './rabbitmq-config.js';
import { RabbitmqTransport } from './rabbitmq-transport.js';

/** Options of the definition itself (config comes from the bus configuration). */
export interface RabbitmqTransportOptions {
  /** Overrides fields of the validated config for every transport this definition creates. */
  readonly overrides?: Partial<Omit<RabbitmqTransportConfig, 'kind'>>;
}

/**
 * The RabbitMQ transport (`transport.kind: 'rabbitmq'`) on amqplib: quorum or classic durable
 * queues, peek-lock with manual acks and prefetch, dead-letter and delay queues, publisher confirms
 * on every copy, automatic reconnection. `url` and `tls.key` are secrets: never logged.
 *
 * @example
 * const bus = createBus({ transport: { kind: 'rabbitmq', url: 'amqp://app:secret@rabbit:5672' } },
 *   { transports: [rabbitmqTransport()] });
 */
export function rabbitmqTransport(
  options: RabbitmqTransportOptions = {},
): TransportDefinition<RabbitmqTransportConfig> {
  return defineTransport({
    kind: 'rabbitmq',
    configSchema: RabbitmqTransportConfigSchema,
    secretFields: ['url', 'tls.key'],
    create(config, deps) {
      return new RabbitmqTransport({ ...config, ...options.overrides }, deps);
    },
  });
}

export {
  type RabbitmqTransportConfig,
  type RabbitmqTransportConfigInput,
  RabbitmqTransportConfigSchema,
  RabbitmqTlsSchema,
} from './rabbitmq-config.js';
export { RabbitmqTransport, rabbitmqCapabilities } from './rabbitmq-transport.js';
export { delayBucketMs, delayQueueName, exchangeFor, queueNames } from './topology.js';
