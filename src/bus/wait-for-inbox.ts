import type { Logger } from 'pino';
import { DependencyError, LifecycleError } from '../errors/sluice-error.js';
import type { InboxCommonConfig, InboxStore } from '../inbox/inbox-store.js';
import { delay } from '../internal/abort.js';
import { redactSecrets, safeError } from '../telemetry/logger.js';

/** Pauses between tries of a store that does not answer at start-up: from the first, doubling up to the last. */
const RETRY_MS = { first: 250, max: 5_000 } as const;

/** What `bus.start()` is waiting for, shown in `bus.health().waitingFor`. */
export interface WaitingFor {
  readonly dependency: string;
  readonly since: string;
  /** The last failure, secrets masked. */
  readonly lastError: string;
}

/**
 * Initialises the inbox store at start-up, trying again with backoff while it fails with a
 * `DependencyError` (the database is down or unreachable), up to the store's `startupWaitMs`;
 * then throws a `DependencyError` that says so. Anything else fails at once. Each wait is logged
 * (what, why, next try) and reported to `onWaiting` (`undefined` once the store answered). Ends with
 * a `LifecycleError` when `signal` aborts (the bus was stopped meanwhile).
 */
export async function waitForInbox(
  inbox: { readonly store: InboxStore<unknown>; readonly config: InboxCommonConfig },
  options: { readonly logger: Logger; readonly signal: AbortSignal; readonly onWaiting: (w?: WaitingFor) => void },
): Promise<void> {
  const { logger, signal, onWaiting } = options;
  const dependency = `inbox store (${inbox.store.kind})`;
  const started = Date.now();
  const deadline = started + inbox.config.startupWaitMs;
  let pause: number = RETRY_MS.first;
  for (let tries = 1; ; tries++) {
    try {
      await inbox.store.init();
      if (tries > 1) logger.info({ dependency, tries }, `${dependency} answers; starting`);
      onWaiting(undefined);
      return;
    } catch (error) {
      if (!(error instanceof DependencyError)) throw error;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new DependencyError(
          `${dependency} did not answer within ${inbox.config.startupWaitMs} ms ` +
            `(inbox.startupWaitMs; ${tries} tries): ${error.message}`,
          { dependency, cause: error },
        );
      }
      const waitMs = Math.min(pause, left);
      onWaiting({ dependency, since: new Date(started).toISOString(), lastError: redactSecrets(error.message) });
      logger.warn(
        { err: safeError(error), dependency, tries, retryInMs: waitMs, givesUpInMs: left },
        `waiting for the ${dependency} before starting`,
      );
      try {
        await delay(waitMs, signal);
      } catch {
        throw new LifecycleError(`the bus was stopped while it waited for the ${dependency}`);
      }
      pause = Math.min(pause * 2, RETRY_MS.max);
    }
  }
}
