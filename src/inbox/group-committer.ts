import { type Clock, systemClock } from '../internal/clock.js';
import type { WaitGauge } from '../internal/wait-gauge.js';
import type { InboxEntry, InboxResult, InboxStore, InboxWork } from './inbox-store.js';

export interface GroupCommitOptions {
  /** Most messages in one transaction. */
  readonly maxMessages: number;
  /** How long the first message waits for others; 0 = only those arriving in the same tick. */
  readonly maxWaitMs: number;
  /**
   * How one failing message is kept from failing the others:
   * `rerun` runs the batch optimistically and, if any handler throws, rolls back and re-runs each
   * message in a transaction of its own; `savepoint` wraps each handler in a savepoint.
   */
  readonly isolation: 'rerun' | 'savepoint';
}

/**
 * Writes the `deferred` parts of the members' work (the history's rows) inside the transaction,
 * once per transaction, after the members ran and before the commit: one statement instead of one
 * per member. Members that failed (their savepoint rolled back) are left out.
 */
export type DeferredFlush = (tx: unknown, deferred: readonly unknown[]) => Promise<void>;

interface Pending {
  readonly entry: InboxEntry;
  readonly work: (tx: unknown) => Promise<InboxWork<unknown>>;
  readonly resolve: (result: InboxResult<unknown>) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for an endpoint's inbox: messages that reach the inbox at about the same time share
 * one transaction (one multi-row claim, their handlers one after another, one commit). Each caller
 * still gets its own result or error, exactly as from `store.runOnce`. `maxWaitMs` is timed on the
 * endpoint's clock; the messages gathering count as waiting on its `waits` gauge.
 */
export class GroupCommitter {
  #pending: Pending[] = [];
  #scheduled: (() => void) | undefined;

  constructor(
    private readonly store: InboxStore<unknown>,
    private readonly options: GroupCommitOptions,
    private readonly deps: {
      readonly clock: Clock;
      readonly waits?: WaitGauge | undefined;
      readonly flush?: DeferredFlush | undefined;
    } = { clock: systemClock },
  ) {}

  /** `work`, then its deferred part written in the same transaction (a member running alone). */
  #flushing<R>(work: (tx: unknown) => Promise<InboxWork<R>>): (tx: unknown) => Promise<InboxWork<R>> {
    const { flush } = this.deps;
    if (!flush) return work;
    return async (tx) => {
      const done = await work(tx);
      if (done.deferred !== undefined) await flush(tx, [done.deferred]);
      return done;
    };
  }

  submit<R>(entry: InboxEntry, work: (tx: unknown) => Promise<InboxWork<R>>): Promise<InboxResult<R>> {
    return new Promise<InboxResult<R>>((resolve, reject) => {
      this.#pending.push({ entry, work, resolve: resolve as (r: InboxResult<unknown>) => void, reject });
      // Gathering for maxWaitMs is a wait for time; gathering for one turn of the event loop is not.
      if (this.options.maxWaitMs > 0) this.deps.waits?.enter();
      if (this.#pending.length >= this.options.maxMessages) this.#flush();
      else this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    if (this.options.maxWaitMs > 0) {
      this.#scheduled = this.deps.clock.setTimer(() => this.#flush(), this.options.maxWaitMs);
    } else {
      const immediate = setImmediate(() => this.#flush());
      this.#scheduled = () => clearImmediate(immediate);
    }
  }

  #flush(): void {
    this.#scheduled?.();
    this.#scheduled = undefined;
    const batch = this.#pending.splice(0, this.options.maxMessages);
    if (this.options.maxWaitMs > 0) for (let i = 0; i < batch.length; i++) this.deps.waits?.leave();
    if (this.#pending.length > 0) this.#schedule();
    if (batch.length > 0) void this.#commit(batch);
  }

  async #commit(batch: Pending[]): Promise<void> {
    if (batch.length === 1) {
      const [only] = batch as [Pending];
      return this.store.runOnce(only.entry, this.#flushing(only.work)).then(only.resolve, only.reject);
    }
    // `rerun`: a handler that throws fails the whole batch (everything rolls back), then each
    // message runs alone. `savepoint`: a handler's failure rolls back only its own statements.
    const isolate = this.options.isolation === 'savepoint';
    const failures = new Map<number, unknown>();
    let results: InboxResult<unknown>[];
    try {
      results = await this.store.runBatch(
        batch.map((p) => p.entry),
        async (tx, fresh) => {
          const done: (InboxWork<unknown> | undefined)[] = [];
          for (const [i, p] of batch.entries()) {
            if (!fresh[i]) {
              await p.entry.duplicate?.(tx);
              done.push(undefined);
            } else if (!isolate) done.push(await p.work(tx));
            else {
              try {
                done.push(await this.store.withSavepoint(tx, () => p.work(tx)));
              } catch (error) {
                failures.set(i, error);
                done.push(undefined);
              }
            }
          }
          const deferred = done.flatMap((d) => (d?.deferred === undefined ? [] : [d.deferred]));
          if (deferred.length > 0) await this.deps.flush?.(tx, deferred);
          return done;
        },
      );
    } catch {
      // Nothing committed (a handler failed under `rerun`, a claim timed out behind another
      // consumer, the connection broke): each message runs alone, so only the one that cannot
      // proceed fails.
      await Promise.all(
        batch.map((p) => this.store.runOnce(p.entry, this.#flushing(p.work)).then(p.resolve, p.reject)),
      );
      return;
    }
    for (const [i, p] of batch.entries()) {
      if (failures.has(i)) p.reject(failures.get(i));
      else p.resolve(results[i] as InboxResult<unknown>);
    }
  }
}
