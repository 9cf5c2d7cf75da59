import { OutageSuspects } from './outage-suspects.js';

/**
 * An outage as the kill switch sees it. The budget of dead letters is per outage, not per trip:
 * after an automatic trip the endpoint is *recovering* until as many successes in a row as
 * `consecutiveFailures` (10 when off) came after it closed again (by a probe or a reset); while
 * recovering the first failure trips the switch again and is released, not dead-lettered, and the
 * backoff keeps growing. The messages whose failure tripped it are suspects. Pure data;
 * `KillSwitchPolicy` decides.
 */
export class Outage {
  /** An automatic trip happened and the endpoint has not proved healthy since. */
  active = false;
  /** Why the outage's first automatic trip fired (for the reason of the trips that follow). */
  reason = '';
  /** Successes still needed after an automatic trip before the outage counts as over; 0: none. */
  recovering = 0;
  /** Messages whose failure tripped the switch during the current outage. */
  readonly suspects = new OutageSuspects();

  /** An automatic trip: the outage begins (with its reason) or goes on. */
  tripped(reason: string): void {
    if (!this.active) this.reason = reason;
    this.active = true;
  }

  /** A counted success while closed: whether it ended the outage (then its suspects are forgotten). */
  succeeded(): boolean {
    if (!this.active || --this.recovering > 0) return false;
    this.active = false;
    this.suspects.clear();
    return true;
  }
}
