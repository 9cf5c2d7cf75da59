import type { KillSwitchConfig } from './kill-switch-config.js';
import { FailureWindow } from './failure-window.js';
import { RecentOutcomes } from './recent-outcomes.js';

/** Successes that end an outage when the consecutive-failures rule is off. */
const DEFAULT_RECOVERY_SUCCESSES = 10;

/**
 * What the kill switch counts while it is closed, and the rules that trip it on those counts:
 * dependency failures in a row (`dependencyFailures`); handler failures in a row
 * (`consecutiveFailures`) that are also no fewer than the successes among the last
 * `recentOutcomes` outcomes; a failure rate over a sliding window (`failureRate`) once a minimum of
 * messages was seen. Pure: time is passed in. `KillSwitchPolicy` decides what is counted and what a
 * fired rule does.
 */
export class TripRules {
  /** Handler failures in a row (a message failing for its own sake does not lengthen the run). */
  consecutiveFailures = 0;
  consecutiveDependency = 0;
  readonly window: FailureWindow | undefined;
  readonly recent: RecentOutcomes;

  constructor(private readonly config: KillSwitchConfig) {
    this.window = config.failureRate ? new FailureWindow(config.failureRate.windowMs) : undefined;
    this.recent = new RecentOutcomes(config.recentOutcomes);
  }

  /**
   * A dependency failure: the reason of the trip it causes, if it does. While recovering from an
   * outage (`recoveringFrom`: its first trip's reason) one is enough.
   */
  dependencyFailed(recoveringFrom: string | undefined, detail: string | undefined): string | undefined {
    this.consecutiveDependency++;
    if (!this.config.enabled) return undefined;
    const limit = recoveringFrom !== undefined ? 1 : this.config.dependencyFailures;
    if (limit === false || this.consecutiveDependency < limit) return undefined;
    const what = detail === undefined ? '' : ` (${detail})`;
    return recoveringFrom !== undefined
      ? `dependency failure${what} while recovering from: ${recoveringFrom}`
      : `${this.consecutiveDependency} consecutive dependency failures${what}`;
  }

  /** A counted handler failure; one the message had before the last success (`ownFault`) does not lengthen the run. */
  failed(ownFault: boolean): void {
    if (!ownFault) {
      this.consecutiveFailures++;
      this.recent.record(true);
    }
  }

  /** A counted success: the runs of failures end. */
  succeeded(): void {
    this.recent.record(false);
    this.consecutiveFailures = 0;
    this.consecutiveDependency = 0;
  }

  /** Successes in a row that end an outage after the switch closed again. */
  recoveryLength(): number {
    const limit = this.config.consecutiveFailures;
    return limit === false ? DEFAULT_RECOVERY_SUCCESSES : limit;
  }

  /** Every count cleared (the switch closed again). */
  clear(): void {
    this.consecutiveFailures = 0;
    this.consecutiveDependency = 0;
    this.recent.clear();
    this.window?.clear();
  }

  /** The reason of the handler-failure rule that a counted failure fires, if one does. */
  fired(now: number, ownFault: boolean): string | undefined {
    const limit = this.config.consecutiveFailures;
    const run = this.consecutiveFailures;
    if (!ownFault && limit !== false && run >= limit) {
      // Weighed against the recent past: a run right after a healthy stretch must outnumber it.
      const { failures, successes } = this.recent.counts();
      if (this.recent.size === 0 || failures >= successes) return `${run} consecutive failures`;
    }
    const rate = this.config.failureRate;
    if (!rate || !this.window) return undefined;
    const { messages, failures } = this.window.counts(now);
    if (messages < rate.minimumMessages || failures / messages < rate.threshold) return undefined;
    return (
      `failure rate ${percent(failures / messages)} reached ${percent(rate.threshold)}: ` +
      `${failures} of ${messages} messages in ${rate.windowMs} ms`
    );
  }
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}
