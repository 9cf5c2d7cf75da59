import { Fifo } from '../internal/fifo.js';
import type { WaitGauge } from '../internal/wait-gauge.js';

export const CANCELLED: unique symbol = Symbol('cancelled');

/** A task that could not start at once: it waits for a slot, or behind a task with its key. */
class Waiting {
  constructor(
    readonly key: string | undefined,
    readonly fn: (arg: unknown) => Promise<unknown>,
    readonly arg: unknown,
    /** What the task resolves with when {@link KeyedLimiter.cancelWaiting} runs before it starts. */
    readonly cancelled: unknown,
    readonly resolve: (value: unknown) => void,
    readonly reject: (error: unknown) => void,
  ) {}
}

const callThunk = (fn: unknown): Promise<unknown> => (fn as () => Promise<unknown>)();

/**
 * Runs at most `concurrency` tasks at once, and tasks that share a key one after another in
 * arrival order; tasks with different keys (or none) run in parallel.
 *
 * A task that can start at once (a free slot, its key idle) runs without any bookkeeping object:
 * that is the common case on the hot path. A task that waits counts as waiting on `waits` until
 * it starts or is cancelled.
 */
export class KeyedLimiter {
  #running = 0;
  readonly #ready = new Fifo<Waiting>();
  /**
   * Keys with a task running or queued. The value is the queue of tasks waiting behind it, created
   * only when a second task with the key arrives (`null` until then).
   */
  readonly #busy = new Map<string, Fifo<Waiting> | null>();

  constructor(
    private readonly concurrency: number,
    private readonly waits?: WaitGauge,
  ) {}

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    let n = this.#ready.length;
    for (const q of this.#busy.values()) n += q?.length ?? 0;
    return n;
  }

  /**
   * Runs `fn` when its turn comes; resolves with `cancelled` if {@link cancelWaiting} ran first.
   */
  run<T>(key: string | undefined, fn: () => Promise<T>): Promise<T | typeof CANCELLED> {
    const call = callThunk as (thunk: () => Promise<T>) => Promise<T | typeof CANCELLED>;
    return this.runWith(key, call, fn, CANCELLED);
  }

  /**
   * Runs `fn(arg)` when its turn comes; resolves with `cancelled` if {@link cancelWaiting} ran
   * first. The same as {@link run}, for the hot path: no closure per task, and a task that starts
   * at once returns `fn`'s own promise (no wrapper).
   */
  runWith<A, T>(key: string | undefined, fn: (arg: A) => Promise<T>, arg: A, cancelled: T): Promise<T> {
    if (key !== undefined) {
      const behind = this.#busy.get(key);
      if (behind !== undefined) {
        // The key is busy: wait behind it, in arrival order.
        return new Promise((resolve, reject) => {
          const queue = behind ?? new Fifo<Waiting>();
          if (behind === null) this.#busy.set(key, queue);
          queue.push(this.#waiting(key, fn, arg, cancelled, resolve, reject));
          this.waits?.enter();
        });
      }
      this.#busy.set(key, null);
    }
    if (this.#running < this.concurrency && this.#ready.length === 0) return this.#start(key, fn, arg);
    return new Promise((resolve, reject) => {
      this.#ready.push(this.#waiting(key, fn, arg, cancelled, resolve, reject));
      this.waits?.enter();
    });
  }

  #waiting<A, T>(
    key: string | undefined,
    fn: (arg: A) => Promise<T>,
    arg: A,
    cancelled: T,
    resolve: (value: T) => void,
    reject: (error: unknown) => void,
  ): Waiting {
    return new Waiting(
      key,
      fn as (arg: unknown) => Promise<unknown>,
      arg,
      cancelled,
      resolve as (value: unknown) => void,
      reject,
    );
  }

  #start<A, T>(key: string | undefined, fn: (arg: A) => Promise<T>, arg: A): Promise<T> {
    this.#running++;
    let result: Promise<T>;
    try {
      result = fn(arg);
    } catch (error) {
      result = Promise.reject(error);
    }
    const done = key === undefined ? this.#freeSlot : this.#freeing(key);
    result.then(done, done);
    return result;
  }

  /** Frees `key` when called. (Returned, not assigned to a name: a bundler that keeps names wraps those.) */
  #freeing(key: string): () => void {
    return () => this.#freeKey(key);
  }

  #startWaiting(task: Waiting): void {
    this.waits?.leave();
    this.#start(task.key, task.fn, task.arg).then(task.resolve, task.reject);
  }

  readonly #freeSlot = (): void => {
    this.#running--;
    this.#startReady();
  };

  #freeKey(key: string): void {
    this.#running--;
    const behind = this.#busy.get(key);
    const next = behind?.shift();
    if (next) this.#ready.push(next);
    else this.#busy.delete(key);
    this.#startReady();
  }

  #startReady(): void {
    while (this.#running < this.concurrency) {
      const next = this.#ready.shift();
      if (!next) break;
      this.#startWaiting(next);
    }
  }

  /** Resolves every task that has not started with `cancelled` (used on shutdown). */
  cancelWaiting(): void {
    // A ready task holds its key (it was next in line) without running: its key becomes free.
    const heldByReady = new Set<string>();
    for (let t = this.#ready.shift(); t; t = this.#ready.shift()) {
      if (t.key !== undefined) heldByReady.add(t.key);
      this.waits?.leave();
      t.resolve(t.cancelled);
    }
    for (const [key, behind] of this.#busy) {
      for (let t = behind?.shift(); t; t = behind?.shift()) {
        this.waits?.leave();
        t.resolve(t.cancelled);
      }
      // Keys whose running task is still going stay busy until it finishes.
      if (heldByReady.has(key)) this.#busy.delete(key);
      else this.#busy.set(key, null);
    }
  }
}
