import type { Logger } from 'pino';
import { settleWithin } from '../internal/abort.js';
import type { Clock } from '../internal/clock.js';
import type { Transport } from '../transport/transport.js';
import { OutboxDispatcher } from './outbox-dispatcher.js';
import { type Dispatch, OutboxRelay } from './outbox-relay.js';
import type { OutboxConfig, OutboxMessage, OutboxStats, OutboxStore } from './outbox-store.js';

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

export interface OutboxDeps {
  readonly store: OutboxStore<unknown>;
  readonly transport: Transport;
  readonly contentType: string;
  readonly config: OutboxConfig;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly onBrokerFailure: (sourceEndpoint: string | undefined, error: unknown) => void;
}

/** How long `stop()` lets dispatches in progress finish. */
const STOP_DISPATCH_MS = 1_000;
const MAX_CLEANUP_ROUNDS = 100;

/**
 * The bus's outbox at run time. `write` puts messages in the caller's transaction; once that
 * transaction committed, `afterCommit` dispatches its rows in process at once (the commits of one
 * event-loop turn share one claim), resolving when they went out or were left for the relay (never
 * rejecting: the message was committed, and whatever the broker does, its rows stay until they
 * are dispatched). The {@link OutboxRelay} does the rest; retention cleanup and the counts of
 * `bus.health()` run on timers.
 */
export class Outbox {
  readonly #dispatcher: Dispatch;
  readonly #relay: OutboxRelay;
  /** Rows of this instance a claim could not take (an earlier row of their key waited): seq → since. */
  readonly #blocked = new Map<number, number>();
  #pending: number[] = [];
  #pendingDone: (() => void)[] = [];
  #scheduled = false;
  readonly #running = new Set<Promise<void>>();
  #stopped = false;
  #stats: OutboxStats | undefined;
  #readAt: number | undefined;
  #dispatched = 0;
  #retried = 0;
  #movedAside = 0;
  #timers: NodeJS.Timeout[] = [];

  constructor(private readonly deps: OutboxDeps) {
    const dispatcher = new OutboxDispatcher({ ...deps, stopping: () => this.#stopped });
    this.#dispatcher = {
      dispatch: async (rows) => {
        const result = await dispatcher.dispatch(rows);
        this.#dispatched += result.dispatched;
        this.#retried += result.retried;
        this.#movedAside += result.movedAside;
        for (const row of rows) this.#blocked.delete(row.seq);
        return result;
      },
    };
    this.#relay = new OutboxRelay(deps.store, this.#dispatcher, deps.config, deps.logger, () => this.#hasBlocked());
  }

  get store(): OutboxStore<unknown> {
    return this.deps.store;
  }

  /** Writes `messages` in `tx` (the caller's transaction); returns their `seq`s, for {@link afterCommit}. */
  write(tx: unknown, messages: readonly OutboxMessage[]): Promise<readonly number[]> {
    return this.deps.store.write(tx, messages);
  }

  /** Dispatches committed rows now, in process. Never rejects. */
  afterCommit(seqs: readonly number[]): Promise<void> {
    if (seqs.length === 0 || this.#stopped) return Promise.resolve();
    this.#pending.push(...seqs);
    const done = new Promise<void>((resolve) => this.#pendingDone.push(resolve));
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
    return done;
  }

  #flush(): void {
    this.#scheduled = false;
    const seqs = this.#pending;
    const waiters = this.#pendingDone;
    this.#pending = [];
    this.#pendingDone = [];
    const run = this.#dispatchNow(seqs).finally(() => {
      this.#running.delete(run);
      for (const resolve of waiters) resolve();
    });
    this.#running.add(run);
  }

  async #dispatchNow(seqs: readonly number[]): Promise<void> {
    const { store, config, logger, clock } = this.deps;
    try {
      const rows = await store.claim({ seqs, limit: seqs.length, leaseMs: config.leaseMs });
      if (rows.length < seqs.length) {
        const claimed = new Set(rows.map((r) => r.seq));
        for (const seq of seqs) if (!claimed.has(seq)) this.#blocked.set(seq, clock.now());
      }
      if (rows.length > 0) await this.#dispatcher.dispatch(rows);
    } catch (error) {
      logger.warn({ err: error }, 'outbox: in-process dispatch failed; the relay dispatches the rows');
    }
    if (this.#blocked.size > 0) this.#relay.wake();
  }

  #hasBlocked(): boolean {
    const expired = this.deps.clock.now() - this.deps.config.leaseMs;
    for (const [seq, since] of this.#blocked) if (since < expired) this.#blocked.delete(seq);
    return this.#blocked.size > 0;
  }

  /** Starts the relay, the counts and the retention cleanup. */
  async start(): Promise<void> {
    await this.deps.store.init();
    await this.#relay.start();
    await this.#readStats();
    this.#every(this.deps.config.statsIntervalMs, () => this.#readStats());
    this.#every(this.deps.config.cleanupIntervalMs, async () => {
      const deleted = await this.cleanup();
      if (deleted > 0) this.deps.logger.info({ deleted }, 'outbox cleanup');
    });
  }

  #every(ms: number, task: () => Promise<void>): void {
    const tick = () => {
      task()
        .catch((error: unknown) => this.deps.logger.warn({ err: error }, 'outbox: a periodic task failed'))
        .finally(() => {
          if (this.#stopped) return;
          const timer = setTimeout(tick, ms);
          timer.unref();
          this.#timers.push(timer);
        });
    };
    const timer = setTimeout(tick, ms);
    timer.unref();
    this.#timers.push(timer);
    // Keep the list short: finished timers go.
    if (this.#timers.length > 16) this.#timers = this.#timers.slice(-4);
  }

  async #readStats(): Promise<void> {
    try {
      this.#stats = await this.deps.store.stats();
      this.#readAt = this.deps.clock.now();
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'outbox: reading its counts failed');
    }
  }

  /** Re-reads the counts now (tests, tools); `view()` shows them. */
  refresh(): Promise<void> {
    return this.#readStats();
  }

  /** Wakes the relay (tests, tools). */
  wake(): void {
    this.#relay.wake();
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

  view(): OutboxView {
    const stats = this.#stats;
    const oldest = stats?.oldestCreatedAt?.getTime();
    return {
      depth: stats?.depth ?? 0,
      oldestAgeMs: oldest === undefined || this.#readAt === undefined ? 0 : Math.max(0, this.#readAt - oldest),
      movedAside: stats?.movedAside ?? 0,
      ...(this.#readAt !== undefined ? { readAt: new Date(this.#readAt).toISOString() } : {}),
      dispatched: this.#dispatched,
      retried: this.#retried,
      movedAsideHere: this.#movedAside,
    };
  }

  /**
   * Stops the relay and the timers, and gives dispatches in progress {@link STOP_DISPATCH_MS}; what
   * is not dispatched stays in the table for the next relay. Call before closing the transport.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    await settleWithin(Promise.all([this.#relay.stop(), ...this.#running]), STOP_DISPATCH_MS);
  }
}
