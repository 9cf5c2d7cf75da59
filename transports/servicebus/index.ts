import { defineTransport, type TransportDefinition } from '../../src/transport-core/index.js';
import type { ServiceBusEntityAdministration } from './entity-administration.js';
import { type ServiceBusTransportConfig, ServiceBusTransportConfigSchema } from './service-bus-config.js';
import { ServiceBusTransport } from './service-bus-transport.js';

/** Options of the definition itself (config comes from the bus configuration). */
export interface ServiceBusTransportOptions {
  /**
   * Creates and checks entities for `entities: 'create'`. Defaults to the service's administration
   * API (`ServiceBusAdministrationClient` on the same connection string, Manage rights).
   */
  readonly administration?: ServiceBusEntityAdministration;
  /** Overrides fields of the validated config for every transport this definition creates. */
  readonly overrides?: Partial<Omit<ServiceBusTransportConfig, 'kind'>>;
}

/**
 * The Azure Service Bus transport (`transport.kind: 'servicebus'`) on `@azure/service-bus`:
 * peek-lock with manual settlement and automatic lock renewal, delayed release by scheduled
 * messages, the native dead-letter subqueue with redrive, the broker's delivery count, and per-key
 * order through sessions when `sessions: true`. `connectionString` is a secret: never logged.
 *
 * @example
 * const bus = createBus(
 *   { transport: { kind: 'servicebus', connectionString: process.env.SB!, entities: 'create' } },
 *   { transports: [serviceBusTransport()] },
 * );
 */
export function serviceBusTransport(
  options: ServiceBusTransportOptions = {},
): TransportDefinition<ServiceBusTransportConfig> {
  return defineTransport({
    kind: 'servicebus',
    configSchema: ServiceBusTransportConfigSchema,
    secretFields: ['connectionString'],
    create(config, deps) {
      return new ServiceBusTransport(
        { ...config, ...options.overrides },
        { ...deps, ...(options.administration ? { administration: options.administration } : {}) },
      );
    },
  });
}

export {
  type QueueCreation,
  type ServiceBusEntityAdministration,
  sdkEntityAdministration,
} from './entity-administration.js';
export { EntityNaming, MAX_SUBSCRIPTION_NAME } from './entity-naming.js';
export {
  type ServiceBusTransportConfig,
  type ServiceBusTransportConfigInput,
  ServiceBusTransportConfigSchema,
} from './service-bus-config.js';
export { serviceBusCapabilities } from './service-bus-delivery.js';
export { ServiceBusTransport } from './service-bus-transport.js';
