import type { ManualClock } from '../internal/clock.js';
import { NotSettledError } from './not-settled-error.js';

/** What the buses of a harness are doing, read on demand. */
export interface QuiescenceSources {
  /** Deliveries in flight that neither wait for a timer nor for another delivery: real work. */
  working(): number;
  /** What keeps the buses from being at rest, one line per item; empty: at rest. */
  pending(): string[];
}

/** A real-time limit: when it falls, and how long it was (for the error). */
interface Deadline {
  readonly at: number;
  readonly timeoutMs: number;
}

/**
 * Tells when the buses of a harness are at rest, and moves virtual time to get them there. It is
 * told of everything that happens (`notify`: a delivery, a settlement, a wait begun or ended, a
 * message handed to the broker) and reads the rest from its sources; it never polls. Virtual time
 * moves only when a whole turn of the event loop passed with nothing happening and no delivery
 * working, so a handler doing real I/O never sees virtual time pass under it (its lock cannot
 * expire while it runs). Every wait is bounded: `timeoutMs` of real time, `horizonMs` of virtual.
 */
export class Quiescence {
  #version = 0;
  readonly #wakers = new Set<() => void>();

  constructor(
    private readonly sources: QuiescenceSources,
    private readonly clock: ManualClock | undefined,
  ) {}

  /** Something happened. Cheap: called on every delivery, settlement and wait. */
  readonly notify = (): void => {
    this.#version++;
    for (const wake of this.#wakers) wake();
    this.#wakers.clear();
  };

  /**
   * Resolves at rest. With a manual clock, whenever only time can move things on, it advances to
   * the next timer due, until nothing is pending; it fails with `horizon` rather than pass
   * `horizonMs` of virtual time, and with `stuck` when work is left that no timer can move.
   */
  async settle(timeoutMs: number, horizonMs: number): Promise<void> {
    const deadline = { at: Date.now() + timeoutMs, timeoutMs };
    const clock = this.clock;
    const from = clock?.now() ?? 0;
    for (;;) {
      await this.#quiet(deadline);
      const pending = this.sources.pending();
      if (pending.length === 0) return;
      if (!clock) {
        // Real time: the delayed work notifies when it arrives.
        await this.#change(this.#version, deadline);
        continue;
      }
      const next = clock.nextTimerAt();
      if (next === undefined) throw new NotSettledError('stuck', 'nothing runs and no timer is due', pending);
      if (next - from > horizonMs) {
        throw new NotSettledError(
          'horizon',
          `virtual time would pass the horizon of ${horizonMs} ms (the next timer is due ${next - from} ms after settling began)`,
          pending,
        );
      }
      clock.advance(next - clock.now());
    }
  }

  /**
   * Moves the manual clock `ms` forward one due instant at a time, letting what each timer starts
   * come to rest before the next, and ends exactly `ms` later.
   */
  async advance(clock: ManualClock, ms: number, timeoutMs: number): Promise<void> {
    const deadline = { at: Date.now() + timeoutMs, timeoutMs };
    const until = clock.now() + Math.max(0, ms);
    for (;;) {
      await this.#quiet(deadline);
      const next = clock.nextTimerAt();
      if (next === undefined || next > until) break;
      clock.advance(next - clock.now());
    }
    clock.advance(until - clock.now());
    await this.#quiet(deadline);
  }

  /**
   * Returns once a whole turn of the event loop passed with nothing happening and no delivery
   * working: each one in flight waits for a timer or for another delivery. While deliveries work,
   * it waits for the next thing to happen.
   */
  async #quiet(deadline: Deadline): Promise<void> {
    for (;;) {
      const seen = this.#version;
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.#version !== seen) {
        if (Date.now() > deadline.at) this.#timedOut(deadline);
        continue;
      }
      if (this.sources.working() === 0) return;
      await this.#change(seen, deadline);
    }
  }

  /** Resolves on the first thing that happens after `seen`; rejects with `timeout` at the deadline. */
  #change(seen: number, deadline: Deadline): Promise<void> {
    if (this.#version !== seen) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(
        () => {
          this.#wakers.delete(wake);
          try {
            this.#timedOut(deadline);
          } catch (error) {
            reject(error);
          }
        },
        Math.max(0, deadline.at - Date.now()),
      );
      this.#wakers.add(wake);
    });
  }

  #timedOut(deadline: Deadline): never {
    const working = this.sources.working();
    const pending = this.sources.pending();
    if (working > 0) pending.unshift(`${working} deliveries are still working (a handler that has not returned?)`);
    throw new NotSettledError(
      'timeout',
      `not settled after ${deadline.timeoutMs} ms of real time`,
      pending.length > 0 ? pending : ['(nothing in the end: work went on until the deadline)'],
    );
  }
}
