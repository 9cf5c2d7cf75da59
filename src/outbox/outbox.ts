import type { Logger } from 'pino';
import { settleWithin } from '../internal/abort.js';
import type { Clock } from '../internal/clock.js';
import type { Transport } from '../transport/transport.js';
import { OutboxDispatcher } from './outbox-dispatcher.js';
import { type Dispatch, OutboxRelay } from './outbox-relay.js';
import type { OutboxConfig, OutboxMessage, OutboxRow, OutboxStats, OutboxStore } from './outbox-store.js';

/** What a transaction wrote to the outbox, for {@link Outbox.afterCommit} once it committed. */
export interface Written {
  /** Rows leased to this writer: dispatched in process right after the commit, without a claim. */
  readonly leased: readonly OutboxRow[];
  /** Rows behind an earlier row of their key: left to the relay, which takes them in order. */
  readonly waiting: readonly number[];
}

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
  /** This bus instance: the owner of the rows its writes lease to its in-process dispatch. */
  readonly instanceId: string;
  readonly transport: Transport;
  readonly contentType: string;
  readonly config: OutboxConfig;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly onBrokerFailure: (sourceEndpoint: string | undefined, error: unknown) => void;
}

/** How long `stop()` lets dispatches in progress finish. */
const STOP_DISPATCH_MS = 700;
const MAX_CLEANUP_ROUNDS = 100;
/** Keys given back that are remembered before the expired ones are swept. */
const MAX_GIVEN_BACK_KEYS = 10_000;

/**
 * The bus's outbox at run time. `write` puts messages in the caller's transaction (leased to this
 * writer when nothing of their key waits before them); once that transaction committed,
 * `afterCommit` dispatches its leased rows in process at once, without a claim (the commits of one
 * event-loop turn together), resolving when they went out or were left for the relay (never
 * rejecting: the message was committed, and whatever the broker does, its rows stay until they
 * are dispatched). The {@link OutboxRelay} does the rest; retention cleanup and the counts of
 * `bus.health()` run on timers.
 */
export class Outbox {
  readonly #dispatcher: Dispatch;
  readonly #relay: OutboxRelay;
  /** Rows of this instance written behind an earlier row of their key (the relay's): seq → since. */
  readonly #blocked = new Map<number, number>();
  #pending: OutboxRow[] = [];
  /** Rows handed to the in-process dispatch and not yet back from the broker. */
  #backlog = 0;
  /** Callers of `afterCommit` waiting for the backlog to fall under `dispatchBacklog`. */
  #underBacklog: (() => void)[] = [];
  /** Keys with a row at the broker in this process: the rows of the key that go after it, in order. */
  readonly #chains = new Map<string, OutboxRow[]>();
  /** Keys whose in-process rows were given back to the relay: until when later rows of them follow. */
  readonly #givenBackKeys = new Map<string, number>();
  #scheduled = false;
  readonly #running = new Set<Promise<void>>();
  #stopped = false;
  #stats: OutboxStats | undefined;
  #readAt: number | undefined;
  #dispatched = 0;
  #retried = 0;
  #movedAside = 0;
  /** The pending timer of each periodic task, by name. */
  readonly #timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly deps: OutboxDeps) {
    const dispatcher = new OutboxDispatcher({ ...deps, stopping: () => this.#stopped });
    this.#dispatcher = {
      dispatch: async (rows) => {
        const result = await dispatcher.dispatch(rows);
        this.#dispatched += result.dispatched;
        this.#retried += result.retried;
        this.#movedAside += result.movedAside;
        for (const row of rows) this.#blocked.delete(row.seq);
        // Rows given back are due after their backoff: wake the relay then (its poll may be slower).
        if (result.nextRetryInMs !== undefined) this.#wakeIn(result.nextRetryInMs);
        return result;
      },
      marked: () => dispatcher.marked(),
    };
    this.#relay = new OutboxRelay(deps.store, this.#dispatcher, deps.config, deps.logger, () => this.#hasBlocked());
  }

  get store(): OutboxStore<unknown> {
    return this.deps.store;
  }

  /** Writes `messages` in `tx` (the caller's transaction), for {@link afterCommit} once it committed. */
  async write(tx: unknown, messages: readonly OutboxMessage[]): Promise<Written> {
    // A stopped outbox dispatches nothing in process: its rows are written due, for any relay.
    const leaseMs = this.#stopped ? 0 : this.deps.config.leaseMs;
    // (Taken before the write: the lease the store gives runs from then or later.)
    const now = this.deps.clock.now();
    const written = await this.deps.store.write(tx, messages, { ms: leaseMs, owner: this.deps.instanceId });
    const leased: OutboxRow[] = [];
    const waiting: number[] = [];
    written.forEach(({ seq, leased: mine }, i) => {
      if (!mine) {
        waiting.push(seq);
        return;
      }
      leased.push({
        ...(messages[i] as OutboxMessage),
        seq,
        createdAt: new Date(now),
        attempts: 1,
        nextAttemptAt: new Date(now + leaseMs),
        dispatchedAt: undefined,
        failedAt: undefined,
        failedReason: undefined,
      });
    });
    return { leased, waiting };
  }

  /**
   * Hands a committed transaction's rows to the dispatch in process: its leased rows go out at once,
   * without a claim (the commits of one event-loop turn together); its waiting rows wake the relay.
   * Resolves at once while this process has fewer than `dispatchBacklog` rows waiting for the broker,
   * else once it is back under it: the caller (a delivery about to be settled, a `bus.transaction`)
   * does not wait for the broker, but a broker slower than the commits slows the consumers instead
   * of filling memory. The rows are committed: nothing is lost whenever the process stops. Never rejects.
   */
  afterCommit(written: Written): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    const now = this.deps.clock.now();
    for (const seq of written.waiting) this.#blocked.set(seq, now);
    if (written.waiting.length > 0) this.#relay.wake();
    if (written.leased.length === 0) return Promise.resolve();
    this.#pending.push(...written.leased);
    this.#backlog += written.leased.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
    if (this.#backlog <= this.deps.config.dispatchBacklog) return Promise.resolve();
    return new Promise<void>((resolve) => this.#underBacklog.push(resolve));
  }

  /** Rows of `count` left the backlog (confirmed, given back or left to the relay): wake who waits. */
  #drained(count: number): void {
    this.#backlog -= count;
    if (this.#backlog > this.deps.config.dispatchBacklog) return;
    const waiters = this.#underBacklog;
    this.#underBacklog = [];
    for (const resolve of waiters) resolve();
  }

  /**
   * Starts the pending rows' dispatch. A keyed row goes out only after the rows of its key before
   * it (a write leases it to this instance behind this instance's own rows of the key): it waits in
   * its key's chain while one of them is with the broker here.
   */
  #flush(): void {
    this.#scheduled = false;
    const rows = this.#pending;
    this.#pending = [];
    const now = this.deps.clock.now();
    const round: OutboxRow[] = [];
    const back: OutboxRow[] = [];
    for (const row of rows) {
      if (row.key === undefined) {
        round.push(row);
        continue;
      }
      const until = this.#givenBackKeys.get(row.key);
      if (until !== undefined && until > now) back.push(row);
      else {
        if (until !== undefined) this.#givenBackKeys.delete(row.key);
        const chain = this.#chains.get(row.key);
        if (chain) chain.push(row);
        else {
          this.#chains.set(row.key, []);
          round.push(row);
        }
      }
    }
    if (back.length > 0) this.#track(this.#giveBack(back));
    if (round.length > 0) this.#track(this.#dispatchRound(round));
  }

  /** Keeps `run` among the dispatches `stop()` waits for, until it ends. */
  #track(run: Promise<void>): void {
    const tracked = run.finally(() => this.#running.delete(tracked));
    this.#running.add(tracked);
  }

  /**
   * Dispatches `rows` (at most one per key); then each confirmed (or moved aside) keyed row lets the
   * next of its chain go, and each row given back takes the rest of its chain with it: they go to
   * the relay, which sends them after it, in order.
   */
  async #dispatchRound(rows: readonly OutboxRow[]): Promise<void> {
    const { logger, config, clock } = this.deps;
    let givenBack: ReadonlySet<number> | undefined;
    try {
      givenBack = (await this.#dispatcher.dispatch(rows)).givenBack;
    } catch (error) {
      logger.warn({ err: error }, 'outbox: in-process dispatch failed; the relay dispatches the rows');
    }
    const now = clock.now();
    const next: OutboxRow[] = [];
    const back: OutboxRow[] = [];
    for (const row of rows) {
      if (row.key === undefined) continue;
      const chain = this.#chains.get(row.key) ?? [];
      const wentOut = givenBack !== undefined && !givenBack.has(row.seq);
      const following = chain.shift();
      // The next row goes only while enough of its lease is left for one dispatch: else to the relay.
      if (wentOut && following && following.nextAttemptAt.getTime() - now > config.dispatchTimeoutMs) {
        next.push(following);
        continue;
      }
      this.#chains.delete(row.key);
      if (wentOut && !following) continue;
      if (following) back.push(following, ...chain);
      // Rows of the key written before the give-back lands may still come: they follow it.
      if (this.#givenBackKeys.size >= MAX_GIVEN_BACK_KEYS) {
        for (const [key, until] of this.#givenBackKeys) if (until <= now) this.#givenBackKeys.delete(key);
      }
      this.#givenBackKeys.set(row.key, now + config.leaseMs);
    }
    this.#drained(rows.length);
    if (back.length > 0) await this.#giveBack(back);
    if (next.length > 0) this.#track(this.#dispatchRound(next));
    // Rows of this instance wait behind these: they become claimable once these are marked.
    if (this.#blocked.size > 0) void this.#dispatcher.marked().then(() => this.#relay.wake());
  }

  /** Leaves rows to the relay (their lease ends now): an earlier row of their key did not go out. */
  async #giveBack(rows: readonly OutboxRow[]): Promise<void> {
    try {
      await this.deps.store.retryAfter(rows.map((row) => ({ seq: row.seq, delayMs: 0 })));
      this.#relay.wake();
    } catch (error) {
      this.deps.logger.warn(
        { err: error, rows: rows.length },
        'outbox: giving rows back to the relay failed; they go out after their lease',
      );
    } finally {
      this.#drained(rows.length);
    }
  }

  #wakeIn(ms: number): void {
    if (this.#stopped) return;
    const timer = setTimeout(() => this.#relay.wake(), ms);
    timer.unref();
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
    this.#every('stats', this.deps.config.statsIntervalMs, () => this.#readStats());
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
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#drained(0);
    for (const resolve of this.#underBacklog.splice(0)) resolve();
    await settleWithin(
      Promise.all([this.#relay.stop(), ...this.#running]).then(() => this.#dispatcher.marked()),
      STOP_DISPATCH_MS,
    );
  }
}
