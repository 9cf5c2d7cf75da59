import { Fifo } from '../internal/fifo.js';
import type { WaitGauge } from '../internal/wait-gauge.js';
import type { MaybePromise } from './maybe-promise.js';

export const CANCELLED: unique symbol = Symbol('cancelled');

/** A task that could not start at once: it waits for a slot, or behind a task with its key. */
class Waiting {
  constructor(
    readonly key: string | undefined,
    readonly fn: (arg: unknown) => MaybePromise<unknown>,
    readonly arg: unknown,
    /** What the task resolves with when {@link KeyedLimiter.cancelWaiting} runs before it starts. */
    readonly cancelled: unknown,
    readonly resolve: (value: unknown) => void,
    readonly reject: (error: unknown) => void,
  ) {}
}

const callThunk = (fn: unknown): MaybePromise<unknown> => (fn as () => MaybePromise<unknown>)();

/**
 * Runs at most `concurrency` tasks at once, and tasks that share a key one after another in
 * arrival order; tasks with different keys (or none) run in parallel.
 *
 * A task that can start at once (a free slot, its key idle) runs without any bookkeeping object:
 * that is the common case on the hot path. A task that waits counts as waiting on `waits` until
 * it starts or is cancelled.
 *
 * A task may finish synchronously (return its result rather than a promise of it): its slot and key
 * are then freed before its result is returned, and the tasks that become ready start at once. They
 * start from one loop (a trampoline), never from inside the task that freed them, so a long queue of
 * synchronous tasks behind one key does not grow the stack.
 */
export class KeyedLimiter {
  #running = 0;
  readonly #ready = new Fifo<Waiting>();
  /**
   * Keys with a task running or queued. The value is the queue of tasks waiting behind it, created
   * only when a second task with the key arrives (`null` until then).
   */
  readonly #busy = new Map<string, Fifo<Waiting> | null>();
  /** `#startReady` is running: a task freed inside it leaves the next start to its loop. */
  #draining = false;

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
  run<T>(key: string | undefined, fn: () => MaybePromise<T>): MaybePromise<T | typeof CANCELLED> {
    const call = callThunk as (thunk: () => MaybePromise<T>) => MaybePromise<T | typeof CANCELLED>;
    return this.runWith(key, call, fn, CANCELLED);
  }

  /**
   * Runs `fn(arg)` when its turn comes; resolves with `cancelled` if {@link cancelWaiting} ran
   * first. The same as {@link run}, for the hot path: no closure per task, and a task that starts
   * at once returns `fn`'s own result (no wrapper): its value when it finished synchronously (or
   * its synchronous throw, thrown on), else its promise. A task that waits gives a promise.
   */
  runWith<A, T>(key: string | undefined, fn: (arg: A) => MaybePromise<T>, arg: A, cancelled: T): MaybePromise<T> {
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
    fn: (arg: A) => MaybePromise<T>,
    arg: A,
    cancelled: T,
    resolve: (value: T) => void,
    reject: (error: unknown) => void,
  ): Waiting {
    return new Waiting(
      key,
      fn as (arg: unknown) => MaybePromise<unknown>,
      arg,
      cancelled,
      resolve as (value: unknown) => void,
      reject,
    );
  }

  #start<A, T>(key: string | undefined, fn: (arg: A) => MaybePromise<T>, arg: A): MaybePromise<T> {
    this.#running++;
    let result: MaybePromise<T>;
    try {
      result = fn(arg);
    } catch (error) {
      // Decided (by a throw): the key is free before the error goes on.
      this.#free(key);
      throw error;
    }
    if (result instanceof Promise) {
      const done = key === undefined ? this.#freeSlot : this.#freeing(key);
      result.then(done, done);
    } else this.#free(key);
    return result;
  }

  #free(key: string | undefined): void {
    if (key === undefined) this.#freeSlot();
    else this.#freeKey(key);
  }

  /** Frees `key` when called. (Returned, not assigned to a name: a bundler that keeps names wraps those.) */
  #freeing(key: string): () => void {
    return () => this.#freeKey(key);
  }

  #startWaiting(task: Waiting): void {
    this.waits?.leave();
    let result: unknown;
    try {
      result = this.#start(task.key, task.fn, task.arg);
    } catch (error) {
      task.reject(error);
      return;
    }
    if (result instanceof Promise) result.then(task.resolve, task.reject);
    else task.resolve(result);
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
    // A task that finishes synchronously frees its slot inside this loop: the loop starts the next.
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#running < this.concurrency) {
        const next = this.#ready.shift();
        if (!next) break;
        this.#startWaiting(next);
      }
    } finally {
      this.#draining = false;
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
