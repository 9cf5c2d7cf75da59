import type { Logger } from 'pino';
import type { Clock } from '../internal/clock.js';
import type { OutboxConfig, OutboxStats, OutboxStore } from './outbox-store.js';

/** The outbox in `bus.health()`: counts and times only. */
export interface OutboxView {
  /** Rows waiting to be dispatched (not moved aside), as last read. */
  readonly depth: number;
  /** How long the oldest of them has waited (ms), as last read; 0 when none. */
  readonly oldestAgeMs: number;
  /** Rows moved aside (refused for good), as last read. */
  readonly movedAside: number;
  /** When those counts were read (ISO 8601); absent before the first read. */
  readonly readAt?: string;
  /** Since start, by this instance: rows the broker confirmed, attempts given back, rows moved aside. */
  readonly dispatched: number;
  readonly retried: number;
  readonly movedAsideHere: number;
}

/** What this instance's outbox did since start. */
export interface OutboxCounts {
  readonly dispatched: number;
  readonly retried: number;
  readonly movedAside: number;
}

const MAX_CLEANUP_ROUNDS = 100;

/**
 * The outbox's periodic work: its counts for `bus.health()` (read every `statsIntervalMs`) and the
 * retention cleanup (every `cleanupIntervalMs`, in bounded batches). A task runs again only after
 * its previous run ended; a failure is logged and the task goes on; `stop()` ends both.
 */
export class OutboxUpkeep {
  #stats: OutboxStats | undefined;
  #readAt: number | undefined;
  #stopped = false;
  /** The pending timer of each periodic task, by name. */
  readonly #timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly deps: {
      readonly store: OutboxStore<unknown>;
      readonly config: OutboxConfig;
      readonly clock: Clock;
      readonly logger: Logger;
    },
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.#every('stats', this.deps.config.statsIntervalMs, () => this.refresh());
    this.#every('cleanup', this.deps.config.cleanupIntervalMs, async () => {
      const deleted = await this.cleanup();
      if (deleted > 0) this.deps.logger.info({ deleted }, 'outbox cleanup');
    });
  }

  /** Runs `task` every `ms` after the previous run ended, until `stop()`. */
  #every(name: string, ms: number, task: () => Promise<void>): void {
    const schedule = () => {
      if (this.#stopped) return;
      const timer = setTimeout(() => {
        task()
          .catch((error: unknown) => this.deps.logger.warn({ err: error }, `outbox: its ${name} task failed`))
          .finally(schedule);
      }, ms);
      timer.unref();
      this.#timers.set(name, timer);
    };
    schedule();
  }

  /** Reads the counts now (never rejects: a failure is logged, the last counts stay). */
  async refresh(): Promise<void> {
    try {
      this.#stats = await this.deps.store.stats();
      this.#readAt = this.deps.clock.now();
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'outbox: reading its counts failed');
    }
  }

  /** Deletes dispatched rows older than the retention, in bounded batches; returns how many. */
  async cleanup(): Promise<number> {
    const { config, clock, store } = this.deps;
    const olderThan = new Date(clock.now() - config.retentionMs);
    let total = 0;
    for (let round = 0; round < MAX_CLEANUP_ROUNDS; round++) {
      const deleted = await store.cleanup(olderThan, config.cleanupBatchSize);
      total += deleted;
      if (deleted < config.cleanupBatchSize) break;
    }
    return total;
  }

  view(counts: OutboxCounts): OutboxView {
    const stats = this.#stats;
    const oldest = stats?.oldestCreatedAt?.getTime();
    return {
      depth: stats?.depth ?? 0,
      oldestAgeMs: oldest === undefined || this.#readAt === undefined ? 0 : Math.max(0, this.#readAt - oldest),
      movedAside: stats?.movedAside ?? 0,
      ...(this.#readAt !== undefined ? { readAt: new Date(this.#readAt).toISOString() } : {}),
      dispatched: counts.dispatched,
      retried: counts.retried,
      movedAsideHere: counts.movedAside,
    };
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
  }
}
