import type { Logger } from 'pino';
import { settleWithin } from '../internal/abort.js';
import type { Clock } from '../internal/clock.js';
import type { Transport } from '../transport-core/transport.js';
import { OutboxDispatcher } from './outbox-dispatcher.js';
import { BlockedRows } from './blocked-rows.js';
import { InProcessDispatch, type LeasedRow } from './in-process-dispatch.js';
import { type Dispatch, OutboxRelay } from './outbox-relay.js';
import { OutboxUpkeep, type OutboxView } from './outbox-upkeep.js';
import {
  type OutboxConfig,
  type OutboxMessage,
  type OutboxStore,
  OutboxWriteNotSent,
  type WrittenRow,
} from './outbox-store.js';

/**
 * What a transaction wrote to the outbox, for {@link Outbox.afterCommit} once it committed (or
 * {@link Outbox.abandon} when it did not). A store that writes at the COMMIT fills it in then.
 */
export interface Written {
  /** Rows leased to this writer: dispatched in process right after the commit, without a claim. */
  readonly leased: LeasedRow[];
  /** Rows behind an earlier row of their key: left to the relay, which takes them in order. */
  readonly waiting: { readonly seq: number; readonly key: string | undefined }[];
  /** The messages written: their keys go to the relay when the rows' fate is unknown. */
  readonly messages: readonly OutboxMessage[];
  /** `known`: the rows above are written; `unsent`: nothing was; `unknown`: the COMMIT's fate is. */
  state: 'pending' | 'known' | 'unsent' | 'unknown';
  /** Settles once `state` is no longer `pending` (never rejects). */
  readonly ready: Promise<void>;
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

/**
 * The bus's outbox at run time. `write` puts messages in the caller's transaction (leased to this
 * writer when nothing of their key but this instance's own rows waits before them); once that
 * transaction committed, `afterCommit` hands its leased rows to the {@link InProcessDispatch}
 * (at once, without a claim; back-pressure past `dispatchBacklog`; never rejecting: the message was
 * committed, and whatever the broker does, its rows stay until they are dispatched). The
 * {@link OutboxRelay} does the rest; retention cleanup and the counts of `bus.health()` run on timers.
 */
export class Outbox {
  readonly #dispatcher: Dispatch;
  readonly #relay: OutboxRelay;
  /** Rows of this instance written behind an earlier row of their key (the relay's). */
  readonly #blocked: BlockedRows;
  readonly #inProcess: InProcessDispatch;
  readonly #upkeep: OutboxUpkeep;
  #stopped = false;
  #dispatched = 0;
  #retried = 0;
  #movedAside = 0;

  constructor(private readonly deps: OutboxDeps) {
    this.#upkeep = new OutboxUpkeep(deps);
    this.#blocked = new BlockedRows(deps.config.leaseMs);
    const dispatcher = new OutboxDispatcher({ ...deps, stopping: () => this.#stopped });
    this.#dispatcher = {
      dispatch: async (rows) => {
        const result = await dispatcher.dispatch(rows);
        this.#dispatched += result.dispatched;
        this.#retried += result.givenBack.size;
        this.#movedAside += result.movedAside;
        for (const row of rows) this.#blocked.delete(row.seq);
        // Rows given back are due after their backoff: wake the relay then (its poll may be slower).
        if (result.nextRetryInMs !== undefined) this.#wakeIn(result.nextRetryInMs);
        return result;
      },
      marked: () => dispatcher.marked(),
    };
    this.#relay = new OutboxRelay(deps.store, this.#dispatcher, deps.config, deps.logger, () =>
      this.#blocked.any(deps.clock.now()),
    );
    this.#inProcess = new InProcessDispatch({
      dispatcher: this.#dispatcher,
      store: deps.store,
      config: deps.config,
      clock: deps.clock,
      logger: deps.logger,
      wakeRelay: () => this.#relay.wake(),
      // A row of this instance waiting behind one of the round's keys becomes claimable once the
      // round's rows are marked: wake the relay then (not for rows behind other keys: its poll does).
      afterRound: (keys) => {
        if (this.#blocked.behindAny(keys, deps.clock.now())) {
          void this.#dispatcher.marked().then(() => this.#relay.wake());
        }
      },
    });
  }

  get store(): OutboxStore<unknown> {
    return this.deps.store;
  }

  /**
   * Writes `messages` in `tx` (the caller's transaction), for {@link afterCommit} once it committed.
   * With a store that writes at the COMMIT (PostgreSQL) it returns at once: the rows are known when
   * the transaction's COMMIT came back.
   */
  async write(tx: unknown, messages: readonly OutboxMessage[]): Promise<Written> {
    // A stopped outbox dispatches nothing in process: its rows are written due, for any relay.
    const leaseMs = this.#stopped ? 0 : this.deps.config.leaseMs;
    // (Taken before the write: the lease the store gives runs from then or later.)
    const now = this.deps.clock.now();
    const leased: LeasedRow[] = [];
    const waiting: Written['waiting'] = [];
    const stored = this.deps.store.write(tx, messages, { ms: leaseMs, owner: this.deps.instanceId });
    const fill = (rows: readonly WrittenRow[]) => {
      rows.forEach(({ seq, leased: mine, after }, i) => {
        if (!mine) {
          waiting.push({ seq, key: messages[i]?.key });
          return;
        }
        const row: LeasedRow = {
          ...(messages[i] as OutboxMessage),
          seq,
          createdAt: new Date(now),
          attempts: 1,
          nextAttemptAt: new Date(now + leaseMs),
          dispatchedAt: undefined,
          failedAt: undefined,
          failedReason: undefined,
          after,
        };
        leased.push(row);
        this.#inProcess.note(row);
      });
      written.state = 'known';
    };
    const written = { leased, waiting, messages, state: 'pending' as Written['state'], ready: Promise.resolve() };
    if (!this.deps.store.writesAtCommit) {
      fill(await stored);
      return written;
    }
    written.ready = stored.then(fill, (error: unknown) => {
      written.state = error instanceof OutboxWriteNotSent ? 'unsent' : 'unknown';
    });
    return written;
  }

  /**
   * The transaction that wrote `written` did not end in {@link afterCommit}: it failed after the
   * write (rolled back, or committed without this process learning it: a lost commit reply, a group
   * committer's rerun). Its keys' next rows go to the relay, which keeps their order whatever it was.
   */
  abandon(written: Written): void {
    void written.ready.then(() => {
      if (written.state === 'known') this.#inProcess.abandon(written.leased);
      else if (written.state !== 'unsent') {
        this.#inProcess.abandonKeys(written.messages.flatMap((m) => (m.key === undefined ? [] : [m.key])));
      }
    });
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
    if (written.state !== 'known') {
      return written.ready.then(() => (written.state === 'known' ? this.afterCommit(written) : undefined));
    }
    if (this.#stopped) {
      // Leased here, committed after the stop: the in-process dispatch gives them back at once.
      void this.#inProcess.add(written.leased);
      return Promise.resolve();
    }
    const now = this.deps.clock.now();
    for (const { seq, key } of written.waiting) this.#blocked.add(seq, key, now);
    if (written.waiting.length > 0) this.#relay.wake();
    return this.#inProcess.add(written.leased);
  }

  #wakeIn(ms: number): void {
    if (this.#stopped) return;
    const timer = setTimeout(() => this.#relay.wake(), ms);
    timer.unref();
  }

  /** Starts the relay, the counts and the retention cleanup. */
  async start(): Promise<void> {
    await this.deps.store.init();
    await this.#relay.start();
    await this.#upkeep.start();
  }

  /** Re-reads the counts now (tests, tools); `view()` shows them. */
  refresh(): Promise<void> {
    return this.#upkeep.refresh();
  }

  /** Wakes the relay (tests, tools). */
  wake(): void {
    this.#relay.wake();
  }

  /** Deletes dispatched rows older than the retention, in bounded batches; returns how many. */
  cleanup(): Promise<number> {
    return this.#upkeep.cleanup();
  }

  view(): OutboxView {
    return this.#upkeep.view({ dispatched: this.#dispatched, retried: this.#retried, movedAside: this.#movedAside });
  }

  /**
   * Stops the relay and the timers, and gives dispatches in progress {@link STOP_DISPATCH_MS}; what
   * is not dispatched stays in the table for the next relay. Call before closing the transport.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#upkeep.stop();
    this.#inProcess.stop();
    await settleWithin(
      Promise.all([this.#relay.stop(), ...this.#inProcess.running()]).then(() => this.#dispatcher.marked()),
      STOP_DISPATCH_MS,
    );
  }
}
