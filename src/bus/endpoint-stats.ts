import type { Logger } from 'pino';
import { BadInputReasons } from '../errors/fault.js';
import type { DeliveryContext } from '../pipeline/context.js';
import type { Outcome, OutcomeObserver, SkipReason } from '../pipeline/outcome.js';
import { safeError } from '../telemetry/logger.js';

/** Counts of final outcomes since start. */
export interface EndpointCounters {
  received: number;
  completed: number;
  skipped: number;
  retried: number;
  deadLettered: number;
  released: number;
  /** Deliveries released because a dependency failed (also counted in `released`): no attempt spent. */
  dependencyFailures: number;
  /** Settlements the broker refused (lock lost): those messages come back. */
  settleFailures: number;
  /** `skipped`, by reason (`duplicate`, `stale`, `tombstoned`, ...). */
  skippedByReason: Partial<Record<SkipReason, number>>;
}

/**
 * The endpoint's counters and its log line per outcome: the first of its outcome observers. Every
 * delivery received is counted by the endpoint (`received`); each settled one here, by outcome.
 */
export class EndpointStats implements OutcomeObserver {
  readonly counters: EndpointCounters = {
    received: 0,
    completed: 0,
    skipped: 0,
    retried: 0,
    deadLettered: 0,
    released: 0,
    dependencyFailures: 0,
    settleFailures: 0,
    skippedByReason: {},
  };

  /** @param logger the endpoint's logger: checked on the hot path so that it never builds a child logger. */
  constructor(private readonly logger: Logger) {}

  settleFailed(): void {
    this.counters.settleFailures++;
  }

  done(ctx: DeliveryContext, outcome: Outcome | undefined): void {
    if (outcome === undefined) return;
    const { counters } = this;
    const log = outcome.kind === 'completed' ? this.logger : ctx.log;
    switch (outcome.kind) {
      case 'completed':
        counters.completed++;
        // Checked on the endpoint logger so that the hot path never builds a child logger.
        if (log.isLevelEnabled('debug')) ctx.log.debug({ outcome: 'completed' }, 'completed');
        return;
      case 'skipped':
        counters.skipped++;
        counters.skippedByReason[outcome.reason] = (counters.skippedByReason[outcome.reason] ?? 0) + 1;
        if (outcome.reason === 'duplicate') log.debug({ outcome: 'skipped', reason: outcome.reason }, 'skipped');
        else
          log.info(
            { outcome: 'skipped', reason: outcome.reason, detail: outcome.detail, ...outcome.ordering },
            'skipped',
          );
        return;
      case 'retry':
        counters.retried++;
        log.warn({ outcome: 'retry', attempt: outcome.attempt, delayMs: outcome.delayMs }, 'released for redelivery');
        return;
      case 'deadLetter': {
        counters.deadLettered++;
        const { fault } = outcome;
        const fields = {
          outcome: 'deadLetter',
          reason: fault.reason,
          description: fault.description,
          attempts: fault.attempts,
        };
        if (BadInputReasons.has(fault.reason)) log.warn(fields, 'dead-lettered bad input');
        else log.error({ ...fields, errorName: fault.errorName, errorMessage: fault.errorMessage }, 'dead-lettered');
        return;
      }
      case 'released':
        counters.released++;
        if (outcome.reason === 'dependency') {
          counters.dependencyFailures++;
          log.warn(
            {
              outcome: 'released',
              reason: outcome.reason,
              dependency: outcome.dependency,
              err: safeError(outcome.error),
              retryInMs: outcome.delayMs,
            },
            'a dependency failed; released without spending an attempt',
          );
        } else log.info({ outcome: 'released', reason: outcome.reason }, 'released');
        return;
    }
  }
}
