import type { Logger } from 'pino';
import type { Clock } from '../internal/clock.js';
import type { Dispatch } from './outbox-relay.js';
import type { OutboxConfig, OutboxRow, OutboxStore } from './outbox-store.js';

export interface InProcessDispatchDeps {
  readonly dispatcher: Dispatch;
  readonly store: OutboxStore<unknown>;
  readonly config: OutboxConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Rows were given back: the relay may take them now. */
  readonly wakeRelay: () => void;
  /** A round of dispatches ended: the keys of its rows. */
  readonly afterRound: (keys: readonly string[]) => void;
}

/** Keys remembered (given back, or with rows handed over) before the expired ones are swept. */
const MAX_REMEMBERED_KEYS = 10_000;

/** Drops the entries of `map` that ran out by `now`, once it holds {@link MAX_REMEMBERED_KEYS}. */
function sweepExpired<V>(map: Map<string, V>, until: (value: V) => number, now: number): void {
  if (map.size < MAX_REMEMBERED_KEYS) return;
  for (const [key, value] of map) if (until(value) <= now) map.delete(key);
}

/**
 * A row leased to this instance. `after`: the last undispatched row of its key when it was written
 * (from a store that writes at the COMMIT, which learns the rows only when the COMMIT came back, in
 * whatever order the commits' replies arrive): it goes out in process only after that row did.
 */
export type LeasedRow = OutboxRow & { readonly after?: number | undefined };

/**
 * The outbox's dispatch in process of rows committed by this instance and leased to it: rows of one
 * event-loop turn go out together, without a claim; a keyed row only after this instance's earlier
 * rows of its key (it waits in its key's chain while one is with the broker); a row not confirmed
 * gives the rest of its chain back to the relay. `add` applies back-pressure: it resolves at once
 * while fewer than `dispatchBacklog` rows wait for the broker here, else once they are back under it.
 */
export class InProcessDispatch {
  #pending: LeasedRow[] = [];
  #scheduled = false;
  /** Rows handed to the in-process dispatch and not yet back from the broker. */
  #backlog = 0;
  /** Callers of `add` waiting for the backlog to fall under `dispatchBacklog`. */
  #underBacklog: (() => void)[] = [];
  /** Keys with a row at the broker in this process: the rows of the key that go after it, in order. */
  readonly #chains = new Map<string, OutboxRow[]>();
  /** Keys whose in-process rows were given back to the relay: until when later rows of them follow. */
  readonly #givenBackKeys = new Map<string, number>();
  /**
   * Keyed rows written leased to this instance and not yet handed over (their transaction is open,
   * or committed and not yet `add`ed — a commit reply late or lost): key → seq → lease end. A later
   * row of the key must not overtake them.
   */
  readonly #noted = new Map<string, Map<number, number>>();
  /** The last row of each key handed to the dispatch here, until when it is remembered (two leases). */
  readonly #handed = new Map<string, { seq: number; until: number }>();
  readonly #running = new Set<Promise<void>>();
  /** The bus is stopping: no dispatch starts; rows still to go are given back to the relays. */
  #stopping = false;

  constructor(private readonly deps: InProcessDispatchDeps) {}

  /** Takes committed rows leased to this instance; never rejects. */
  add(rows: readonly LeasedRow[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    for (const row of rows) this.#unnote(row);
    this.#pending.push(...rows);
    this.#backlog += rows.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
    if (this.#backlog <= this.deps.config.dispatchBacklog) return Promise.resolve();
    return new Promise<void>((resolve) => this.#underBacklog.push(resolve));
  }

  /** The dispatches in progress (stop waits for them, within its time). */
  running(): Promise<void>[] {
    return [...this.#running];
  }

  /**
   * The bus is stopping: lets every caller waiting for the backlog go, and starts no dispatch from
   * now on. The rounds at the broker finish (the outbox's stop waits for them, within its time);
   * the rows that would have followed them, and rows added after, are given back to the relays
   * (of another instance, or of the next start) instead of going out while the transport closes.
   */
  stop(): void {
    this.#stopping = true;
    for (const resolve of this.#underBacklog.splice(0)) resolve();
    // Rows added in this turn: given back now, among the dispatches the stop waits for (their
    // flush would run after the stop took `running()`, maybe once the store is closed).
    if (this.#scheduled) this.#flush();
  }

  /** A keyed row was just written leased to this instance: rows of its key written after it wait for it. */
  note(row: OutboxRow): void {
    if (row.key === undefined) return;
    const seqs = this.#noted.get(row.key);
    if (seqs) seqs.set(row.seq, row.nextAttemptAt.getTime());
    else this.#noted.set(row.key, new Map([[row.seq, row.nextAttemptAt.getTime()]]));
  }

  /**
   * Rows written leased whose transaction did not end in `add`: rolled back, or committed without
   * this process knowing (a lost commit reply, a group committer's rerun). They may exist: their keys'
   * next rows go to the relay, which sends them in `seq` order, for two leases.
   */
  abandon(rows: readonly OutboxRow[]): void {
    const now = this.deps.clock.now();
    for (const row of rows) {
      this.#unnote(row);
      if (row.key !== undefined) this.#giveBackKey(row.key, now);
    }
  }

  /** Like {@link abandon}, for rows whose `seq`s are unknown (a COMMIT that may or may not have happened). */
  abandonKeys(keys: readonly string[]): void {
    const now = this.deps.clock.now();
    for (const key of keys) this.#giveBackKey(key, now);
  }

  #unnote(row: OutboxRow): void {
    if (row.key === undefined) return;
    const seqs = this.#noted.get(row.key);
    if (seqs?.delete(row.seq) && seqs.size === 0) this.#noted.delete(row.key);
  }

  /** Whether a row of `row`'s key written before it (leased here, lease running) was not handed over. */
  #behindUnknown(row: OutboxRow, now: number): boolean {
    const seqs = row.key === undefined ? undefined : this.#noted.get(row.key);
    if (!seqs) return false;
    let behind = false;
    for (const [seq, until] of seqs) {
      if (until <= now) seqs.delete(seq);
      else if (seq < row.seq) behind = true;
    }
    if (seqs.size === 0 && row.key !== undefined) this.#noted.delete(row.key);
    return behind;
  }

  /** Later rows of `key` follow its given-back rows to the relay, for two leases (rows leased behind them). */
  #giveBackKey(key: string, now: number): void {
    sweepExpired(this.#givenBackKeys, (until) => until, now);
    this.#givenBackKeys.set(key, now + 2 * this.deps.config.leaseMs);
  }

  /** Whether the row `row` was written after (`after`) is unknown here: not handed to this dispatch. */
  #afterUnknown(row: LeasedRow & { key: string }, now: number): boolean {
    if (row.after === undefined) return false;
    const handed = this.#handed.get(row.key);
    return handed === undefined || handed.until <= now || handed.seq < row.after;
  }

  /** `row` goes to the dispatch here: rows written after it may follow it in process. */
  #hand(row: OutboxRow & { key: string }, now: number): void {
    sweepExpired(this.#handed, ({ until }) => until, now);
    const seq = Math.max(row.seq, this.#handed.get(row.key)?.seq ?? 0);
    this.#handed.set(row.key, { seq, until: now + 2 * this.deps.config.leaseMs });
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
    // In `seq` order: the commits of one turn, whatever order their callers came back in.
    const rows = this.#pending.sort((a, b) => a.seq - b.seq);
    this.#pending = [];
    const now = this.deps.clock.now();
    const round: OutboxRow[] = [];
    const back: OutboxRow[] = [];
    for (const row of rows) {
      if (this.#stopping) {
        back.push(row);
        continue;
      }
      if (row.key === undefined) {
        round.push(row);
        continue;
      }
      const until = this.#givenBackKeys.get(row.key);
      // To the relay: a row of its key was given back, or one written before it was not handed over
      // (yet), or too little of its lease is left for one dispatch.
      const keyed = row as LeasedRow & { key: string };
      if (until !== undefined && until > now) back.push(row);
      else if (this.#behindUnknown(row, now) || this.#afterUnknown(keyed, now) || this.#leaseTooShort(row, now)) {
        back.push(row);
        this.#giveBackKey(row.key, now);
      } else {
        if (until !== undefined) this.#givenBackKeys.delete(row.key);
        this.#hand(keyed, now);
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

  /** Whether less of `row`'s lease is left than one dispatch may take (then it is the relay's). */
  #leaseTooShort(row: OutboxRow, now: number): boolean {
    return row.nextAttemptAt.getTime() - now <= this.deps.config.dispatchTimeoutMs;
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
    const { logger, clock } = this.deps;
    let givenBack: ReadonlySet<number> | undefined;
    try {
      givenBack = (await this.deps.dispatcher.dispatch(rows)).givenBack;
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
      if (wentOut && following && !this.#stopping && !this.#leaseTooShort(following, now)) {
        next.push(following);
        continue;
      }
      this.#chains.delete(row.key);
      if (wentOut && !following) continue;
      if (following) back.push(following, ...chain);
      // Rows of the key written before the give-back lands may still come: they follow it.
      this.#giveBackKey(row.key, now);
    }
    this.#drained(rows.length);
    if (back.length > 0) await this.#giveBack(back);
    if (next.length > 0) this.#track(this.#dispatchRound(next));
    this.deps.afterRound(rows.flatMap((row) => (row.key === undefined ? [] : [row.key])));
  }

  /** Leaves rows to the relay (their lease ends now): an earlier row of their key did not go out. */
  async #giveBack(rows: readonly OutboxRow[]): Promise<void> {
    try {
      await this.deps.store.retryAfter(rows.map((row) => ({ seq: row.seq, attempts: row.attempts, delayMs: 0 })));
      this.deps.wakeRelay();
    } catch (error) {
      this.deps.logger.warn(
        { err: error, rows: rows.length },
        'outbox: giving rows back to the relay failed; they go out after their lease',
      );
    } finally {
      this.#drained(rows.length);
    }
  }
}
