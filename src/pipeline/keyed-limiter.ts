import { Fifo } from '../internal/fifo.js';
import type { WaitGauge } from '../internal/wait-gauge.js';

/** What the limiter schedules: the caller's own object (a delivery's run), queued as it is. */
export interface KeyedTask {
  /** Tasks with the same key run one after another, in the order submitted; `undefined`: no key. */
  readonly scheduleKey: string | undefined;
}

/**
 * Runs at most `concurrency` tasks at once, and tasks that share a key one after another in
 * submission order; tasks with different keys (or none) run in parallel.
 *
 * A task is the caller's object: the limiter queues it as it is (no record, promise or closure per
 * task), hands it to `start` when its turn comes, and the caller reports its end with {@link done},
 * synchronously from inside `start` or later. A task that waits counts as waiting on `waits` until
 * it starts or is cancelled.
 *
 * Tasks that become ready start from one loop (a trampoline), never from inside the `done` of a task
 * that `start` is still running, so a long queue of tasks that finish synchronously does not grow
 * the stack.
 */
export class KeyedLimiter<T extends KeyedTask> {
  #running = 0;
  readonly #ready = new Fifo<T>();
  /**
   * Keys with a task running or queued. The value is the queue of tasks waiting behind it, created
   * only when a second task with the key arrives (`null` until then).
   */
  readonly #busy = new Map<string, Fifo<T> | null>();
  /** `#startReady` is running: a task freed inside it leaves the next start to its loop. */
  #draining = false;

  /**
   * @param start runs a task whose turn has come. It must not throw, and must call {@link done}
   *   exactly once for the task, now or later.
   */
  constructor(
    private readonly concurrency: number,
    private readonly start: (task: T) => void,
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

  /** Starts `task` now (inside this call) when a slot and its key are free; else queues it. */
  submit(task: T): void {
    const key = task.scheduleKey;
    if (key !== undefined) {
      const behind = this.#busy.get(key);
      if (behind !== undefined) {
        // The key is busy: wait behind it, in submission order.
        if (behind === null) {
          const queue = new Fifo<T>();
          queue.push(task);
          this.#busy.set(key, queue);
        } else behind.push(task);
        this.waits?.enter();
        return;
      }
      this.#busy.set(key, null);
    }
    if (this.#running < this.concurrency && this.#ready.length === 0) {
      this.#running++;
      this.start(task);
      return;
    }
    this.#ready.push(task);
    this.waits?.enter();
  }

  /** `task` (started by `start`) has finished: its slot and its key are free. */
  done(task: T): void {
    this.#running--;
    const key = task.scheduleKey;
    if (key !== undefined) {
      const behind = this.#busy.get(key);
      const next = behind?.shift();
      if (next) this.#ready.push(next);
      else this.#busy.delete(key);
    }
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
        this.waits?.leave();
        this.#running++;
        this.start(next);
      }
    } finally {
      this.#draining = false;
    }
  }

  /** Takes every task that has not started out of the queues (used on shutdown); returns them in order. */
  cancelWaiting(): T[] {
    const cancelled: T[] = [];
    // A ready task holds its key (it was next in line) without running: its key becomes free.
    const heldByReady = new Set<string>();
    for (let t = this.#ready.shift(); t; t = this.#ready.shift()) {
      if (t.scheduleKey !== undefined) heldByReady.add(t.scheduleKey);
      this.waits?.leave();
      cancelled.push(t);
    }
    for (const [key, behind] of this.#busy) {
      for (let t = behind?.shift(); t; t = behind?.shift()) {
        this.waits?.leave();
        cancelled.push(t);
      }
      // Keys whose running task is still going stay busy until it finishes.
      if (heldByReady.has(key)) this.#busy.delete(key);
      else this.#busy.set(key, null);
    }
    return cancelled;
  }
}
