import type { KillSwitchState } from './kill-switch-policy.js';

/** One state change of an endpoint's kill switch, as logged and emitted. */
export interface KillSwitchChange {
  readonly endpoint: string;
  readonly from: KillSwitchState;
  readonly to: KillSwitchState;
  /** When it changed (RFC 3339, UTC). */
  readonly at: string;
  /** Why: the trip rule that fired, the operator's reason, `probe failed`, `probe succeeded`. */
  readonly reason: string;
  /** Tripped by an operator (stays tripped until reset) rather than by a rule. */
  readonly manual: boolean;
  /** Automatic trips in a row without a successful probe in between (drives the restart delay). */
  readonly consecutiveTrips: number;
  /** When an automatically tripped switch starts probing (only on `killswitch.tripped`). */
  readonly restartAt?: string;
}

/**
 * The kill switch's events, added to the bus's event map (`BusEvents`, in `src/telemetry/`, ranked
 * below this folder) by declaration merging: the map names no feature; each declares its own.
 */
declare module '../telemetry/events.js' {
  interface BusEvents {
    /** The switch opened: the consumer is paused, in-flight failures are released, not dead-lettered. */
    'killswitch.tripped': KillSwitchChange;
    /** The restart delay passed: the consumer resumed and admits `probeMessages` messages. */
    'killswitch.probing': KillSwitchChange;
    /** The probes succeeded: the endpoint consumes normally again. */
    'killswitch.closed': KillSwitchChange;
    /** An operator (code or HTTP) reset the switch: it is closed and its counts start over. */
    'killswitch.reset': KillSwitchChange;
  }
}
