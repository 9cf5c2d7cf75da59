import type { Logger } from 'pino';
import type { EnvelopeCodec } from '../envelope/cloudevents-codec.js';
import type { HistoryRuntime } from '../history/history-runtime.js';
import type { InboxCommonConfig, InboxStore } from '../inbox/inbox-store.js';
import type { Clock } from '../internal/clock.js';
import type { WaitGauge } from '../internal/wait-gauge.js';
import type { Transport } from '../transport-core/transport.js';
import type { BusConfig } from './config-schema.js';
import type { DeliveryObserver } from '../pipeline/delivery-observer.js';
import type { EndpointRegistration } from './endpoint-builder.js';

export type BusState = 'created' | 'starting' | 'started' | 'stopping' | 'stopped';

/** Everything the bus is built from; assembled and validated by `createBus`. */
export interface BusParts {
  readonly config: BusConfig;
  readonly transport: Transport;
  /** The inbox store and its common settings, when the bus has one. */
  readonly inbox: { readonly store: InboxStore<unknown>; readonly config: InboxCommonConfig } | undefined;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly codec: EnvelopeCodec;
  readonly registrations: Map<string, EndpointRegistration>;
  /** Validates code-given endpoint options merged with config; throws ConfigError naming the field. */
  readonly resolveEndpoint: (name: string, options: object) => EndpointRegistration;
  /** Counts deliveries that wait (for time, or for another delivery) rather than work: `sluice/testing`. */
  readonly waits?: WaitGauge;
  /** Sees each delivery leave its endpoint with its settled outcome: `sluice/testing`. */
  readonly observer?: DeliveryObserver;
  /** The history of each key beside the inbox (docs/explain.md); undefined without one. */
  readonly history?: HistoryRuntime | undefined;
}
