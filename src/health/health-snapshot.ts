import type { KillSwitchView } from '../killswitch/kill-switch.js';
import type { ConsumerView } from './consumer-view.js';

/**
 * What the health and admin routes read of a bus's health: `BusHealth` (src/bus, ranked above this
 * folder, which builds it) is one. Declared here so that the routes do not import the bus.
 */
export interface HealthSnapshot {
  readonly state: string;
  readonly transport: { readonly kind: string; readonly state: string };
  readonly endpoints: Readonly<Record<string, EndpointSnapshot>>;
  /** The outbox, when the bus has one: counts and times only (shown without a token too). */
  readonly outbox?: object | undefined;
}

/** One endpoint of a {@link HealthSnapshot}. */
export interface EndpointSnapshot {
  readonly state: string;
  readonly inFlight: number;
  readonly counters: object;
  readonly killSwitch: KillSwitchView;
  readonly consumer: ConsumerView;
}
