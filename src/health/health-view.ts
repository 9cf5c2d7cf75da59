import type { KillSwitchView } from '../killswitch/kill-switch.js';
import type { ConsumerView } from './consumer-view.js';
import type { EndpointSnapshot, HealthSnapshot } from './health-snapshot.js';

/** The kill switch as a caller without a token sees it: states, counts and times, no text. */
export type OpenKillSwitchView = Pick<
  KillSwitchView,
  | 'state'
  | 'enabled'
  | 'manual'
  | 'trippedAt'
  | 'restartAt'
  | 'consecutiveTrips'
  | 'consecutiveFailures'
  | 'window'
  | 'probes'
  | 'recovering'
  | 'trips'
  | 'released'
> & { readonly lastFailure?: { readonly at: string } };

/** The consumer as a caller without a token sees it: its state and times, not the errors' texts. */
export type OpenConsumerView = Pick<
  ConsumerView,
  'state' | 'paused' | 'since' | 'failedAttempts' | 'nextAttemptAt' | 'restarts'
>;

/** One endpoint as the health routes show it. */
export type EndpointView = Omit<EndpointSnapshot, 'killSwitch' | 'consumer'> & {
  readonly killSwitch: KillSwitchView | OpenKillSwitchView;
  readonly consumer: ConsumerView | OpenConsumerView;
};

/**
 * The endpoints of a health snapshot by name, in a `Map`: a name from a request is looked up with
 * `get`, which never reaches `Object.prototype` (`constructor`, `toString`, `__proto__`).
 */
export function endpointsOf(health: HealthSnapshot, withTexts: boolean): Map<string, EndpointView> {
  return new Map(
    Object.entries(health.endpoints).map(([name, endpoint]) => [name, withTexts ? endpoint : withoutTexts(endpoint)]),
  );
}

/** The whole view, for `GET {base}/endpoints`: the snapshot as it is, or without texts. */
export function busView(health: HealthSnapshot, withTexts: boolean): unknown {
  if (withTexts) return health;
  return {
    state: health.state,
    transport: health.transport,
    endpoints: Object.fromEntries(endpointsOf(health, withTexts)),
    // Counts and times only: shown without a token too.
    ...(health.outbox ? { outbox: health.outbox } : {}),
  };
}

/**
 * Keeps what says how an endpoint is doing and drops every text: the trip reason (an operator's or
 * a rule's words) and the last failure's reason, error name, description (the handler error's
 * message: SQL, host names), message id and type; the consumer's stop reason and restart error. A list of what to keep, not of what to drop, so
 * that a field added to the kill switch's view later stays hidden until someone decides it may be
 * shown.
 */
function withoutTexts(endpoint: EndpointSnapshot): EndpointView {
  const ks = endpoint.killSwitch;
  const killSwitch: OpenKillSwitchView = {
    state: ks.state,
    enabled: ks.enabled,
    manual: ks.manual,
    ...(ks.trippedAt !== undefined ? { trippedAt: ks.trippedAt } : {}),
    ...(ks.restartAt !== undefined ? { restartAt: ks.restartAt } : {}),
    consecutiveTrips: ks.consecutiveTrips,
    consecutiveFailures: ks.consecutiveFailures,
    ...(ks.window !== undefined ? { window: ks.window } : {}),
    ...(ks.probes !== undefined ? { probes: ks.probes } : {}),
    ...(ks.recovering !== undefined ? { recovering: ks.recovering } : {}),
    trips: ks.trips,
    released: ks.released,
    ...(ks.lastFailure !== undefined ? { lastFailure: { at: ks.lastFailure.at } } : {}),
  };
  const c = endpoint.consumer;
  const consumer: OpenConsumerView = {
    state: c.state,
    paused: c.paused,
    since: c.since,
    ...(c.failedAttempts !== undefined ? { failedAttempts: c.failedAttempts } : {}),
    ...(c.nextAttemptAt !== undefined ? { nextAttemptAt: c.nextAttemptAt } : {}),
    restarts: c.restarts,
  };
  return { state: endpoint.state, inFlight: endpoint.inFlight, counters: endpoint.counters, killSwitch, consumer };
}
