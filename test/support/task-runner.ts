import { KeyedLimiter } from '../../src/pipeline/keyed-limiter.js';
import type { MaybePromise } from '../../src/pipeline/maybe-promise.js';

export const CANCELLED: unique symbol = Symbol('cancelled');

type Ending = { readonly value: unknown } | { readonly error: unknown };

interface Task {
  readonly scheduleKey: string | undefined;
  readonly fn: () => unknown;
  ending?: Ending;
  resolve?: (value: unknown) => void;
  reject?: (error: unknown) => void;
}

/**
 * Runs functions through a {@link KeyedLimiter} the way the delivery pipeline does (its start
 * callback runs the task, `done` when it has finished), and gives each caller its result: the value
 * itself when the task started and finished inside `run`, else a promise of it; `CANCELLED` for a
 * task `cancelWaiting` took out of the queues.
 */
export class TaskRunner {
  readonly limiter: KeyedLimiter<Task>;

  constructor(concurrency: number) {
    this.limiter = new KeyedLimiter<Task>(concurrency, (task) => this.#start(task));
  }

  get running(): number {
    return this.limiter.running;
  }

  get waiting(): number {
    return this.limiter.waiting;
  }

  run<T>(key: string | undefined, fn: () => MaybePromise<T>): MaybePromise<T | typeof CANCELLED> {
    const task: Task = { scheduleKey: key, fn };
    this.limiter.submit(task);
    const { ending } = task;
    if (ending) {
      if ('error' in ending) throw ending.error;
      return ending.value as T;
    }
    return new Promise<T | typeof CANCELLED>((resolve, reject) => {
      task.resolve = resolve as (value: unknown) => void;
      task.reject = reject;
    });
  }

  cancelWaiting(): void {
    for (const task of this.limiter.cancelWaiting()) this.#end(task, { value: CANCELLED });
  }

  #start(task: Task): void {
    let result: unknown;
    try {
      result = task.fn();
    } catch (error) {
      this.#end(task, { error });
      this.limiter.done(task);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (value: unknown) => {
          this.#end(task, { value });
          this.limiter.done(task);
        },
        (error: unknown) => {
          this.#end(task, { error });
          this.limiter.done(task);
        },
      );
      return;
    }
    this.#end(task, { value: result });
    this.limiter.done(task);
  }

  #end(task: Task, ending: Ending): void {
    task.ending = ending;
    if ('error' in ending) task.reject?.(ending.error);
    else task.resolve?.(ending.value);
  }
}
