import type { EndpointTopology } from '../transport-core/transport.js';
import type { EndpointConfig } from './config-schema.js';
import type { EndpointRegistration } from './endpoint-builder.js';

/** Where `unknownTypes: 'skippedQueue'` moves an endpoint's unknown types: `skippedAddress`, else `<address>.skipped`. */
export function skippedAddressOf(config: EndpointConfig, name: string): string {
  return config.skippedAddress ?? `${config.address ?? name}.skipped`;
}

export function topologyOf(registration: EndpointRegistration): EndpointTopology {
  const { config, name } = registration;
  return {
    address: config.address ?? name,
    endpoint: name,
    messageTypes: [...registration.routes.keys()],
    skippedAddress: config.unknownTypes === 'skippedQueue' ? skippedAddressOf(config, name) : undefined,
  };
}
