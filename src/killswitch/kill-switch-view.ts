import type { Envelope } from '../envelope/envelope.js';
import type { Outcome } from '../pipeline/outcome.js';
import { redactSecrets } from '../telemetry/logger.js';
import { SluiceHeader } from '../transport-core/headers.js';
import type { KillSwitchConfig } from './kill-switch-config.js';
import type { KillSwitchSnapshot, KillSwitchState, OutcomeFacts } from './kill-switch-policy.js';

/** The most recent failure the switch saw: enough to tell an operator what broke. */
export interface LastFailure {
  readonly at: string;
  /**
   * The dead-letter reason, `redelivery` for a failed delivery released for a later attempt, or
   * `dependency` for a dependency failure.
   */
  readonly reason: string;
  /** Secrets in connection strings are masked. */
  readonly description: string;
  readonly errorName?: string;
  readonly messageId?: string;
  readonly messageType?: string;
}

/** A JSON-ready view of one endpoint's kill switch (in `bus.health()` and `GET /health/endpoints`). */
export interface KillSwitchView {
  readonly state: KillSwitchState;
  /** Automatic rules on (`killSwitch.enabled`). */
  readonly enabled: boolean;
  /** Tripped by an operator: stays tripped until reset. */
  readonly manual: boolean;
  /** Why it tripped (while tripped or probing). */
  readonly reason?: string;
  readonly trippedAt?: string;
  /** When probing starts (automatic trips). */
  readonly restartAt?: string;
  readonly consecutiveTrips: number;
  readonly consecutiveFailures: number;
  readonly consecutiveDependencyFailures: number;
  /** Closed after an automatic trip and not yet trusted: one failure trips it again (see docs/kill-switch.md). */
  readonly recovering?: { readonly successesNeeded: number };
  /** The failure-rate window's counts, when that rule is configured. */
  readonly window?: { readonly messages: number; readonly failures: number; readonly windowMs: number };
  readonly probes?: { readonly inFlight: number; readonly succeeded: number; readonly needed: number };
  /** Trips since start. */
  readonly trips: number;
  /** Deliveries the switch gave back to the broker since start. */
  readonly released: number;
  readonly lastFailure?: LastFailure;
}

/** The runtime's own counts beside the policy's snapshot. */
export interface KillSwitchCounts {
  readonly trips: number;
  readonly released: number;
  readonly lastFailure: LastFailure | undefined;
}

/** What `view()` shows of a switch: the policy's snapshot, its config and the runtime's counts. Pure. */
export function killSwitchView(
  snapshot: KillSwitchSnapshot,
  config: KillSwitchConfig,
  counts: KillSwitchCounts,
): KillSwitchView {
  const { trip, window } = snapshot;
  const rate = config.failureRate;
  return {
    state: snapshot.state,
    enabled: config.enabled,
    manual: trip?.manual ?? false,
    ...(trip
      ? {
          reason: trip.reason,
          trippedAt: iso(trip.at),
          ...(trip.restartAt !== undefined && snapshot.state === 'tripped' ? { restartAt: iso(trip.restartAt) } : {}),
        }
      : {}),
    consecutiveTrips: snapshot.consecutiveTrips,
    consecutiveFailures: snapshot.consecutiveFailures,
    consecutiveDependencyFailures: snapshot.consecutiveDependencyFailures,
    ...(snapshot.recovering ? { recovering: snapshot.recovering } : {}),
    ...(window && rate ? { window: { ...window, windowMs: rate.windowMs } } : {}),
    ...(snapshot.probes ? { probes: snapshot.probes } : {}),
    trips: counts.trips,
    released: counts.released,
    ...(counts.lastFailure ? { lastFailure: counts.lastFailure } : {}),
  };
}

/** The facts of an outcome that has none (every completed message: shared, not allocated). */
const NO_FACTS: OutcomeFacts = Object.freeze({});

export function factsOf(outcome: Outcome, envelope: Envelope | undefined): OutcomeFacts {
  switch (outcome.kind) {
    case 'released':
      return outcome.reason === 'dependency' ? { detail: outcome.dependency } : NO_FACTS;
    case 'deadLetter':
      return {
        firstFailureAt: Date.parse(outcome.fault.firstFailureAt),
        ...(envelope ? { messageId: envelope.id } : {}),
      };
    case 'retry': {
      const first = outcome.headers[SluiceHeader.firstFailureAt];
      return {
        ...(first === undefined ? {} : { firstFailureAt: Date.parse(first) }),
        ...(envelope ? { messageId: envelope.id } : {}),
      };
    }
    default:
      return NO_FACTS;
  }
}

export function lastFailureOf(outcome: Outcome, envelope: Envelope | undefined, now: number): LastFailure | undefined {
  if (outcome.kind === 'deadLetter') {
    const { fault } = outcome;
    return {
      at: fault.lastFailureAt,
      reason: fault.reason,
      description: redactSecrets(fault.description),
      ...(fault.errorName !== undefined ? { errorName: fault.errorName } : {}),
      ...(fault.messageId !== undefined ? { messageId: fault.messageId } : {}),
      ...(fault.messageType !== undefined ? { messageType: fault.messageType } : {}),
    };
  }
  if (outcome.kind === 'released' && outcome.reason === 'dependency') {
    const error = outcome.error instanceof Error ? outcome.error : undefined;
    return {
      at: iso(now),
      reason: 'dependency',
      description: redactSecrets(
        `${outcome.dependency} failed: ${error ? `${error.name}: ${error.message}` : String(outcome.error)}`,
      ),
      ...(error ? { errorName: error.name } : {}),
      ...(envelope ? { messageId: envelope.id, messageType: envelope.type } : {}),
    };
  }
  if (outcome.kind !== 'retry') return undefined;
  const error = outcome.error instanceof Error ? outcome.error : undefined;
  return {
    at: iso(now),
    reason: 'redelivery',
    description: redactSecrets(
      `attempt ${outcome.attempt} failed; last: ${error ? `${error.name}: ${error.message}` : String(outcome.error)}`,
    ),
    ...(error ? { errorName: error.name } : {}),
    ...(envelope ? { messageId: envelope.id, messageType: envelope.type } : {}),
  };
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
