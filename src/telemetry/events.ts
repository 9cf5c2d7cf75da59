/** An endpoint's consumer stopped consuming on its own, or consumes again. */
export interface ConsumerChange {
  readonly endpoint: string;
  /** When it changed (RFC 3339, UTC). */
  readonly at: string;
  /** Why it stopped (`consumer.down`), credentials masked. */
  readonly reason?: string;
  /** When it had stopped (`consumer.up`). */
  readonly downSince?: string;
}

/**
 * The events a bus emits, by name. Subscribe with `bus.on(name, listener)`.
 *
 * The map is an interface so that it can grow: a feature adds its events by declaring more members
 * (declaration merging) without touching the emitter, as the kill switch does for its `killswitch.*`
 * events (`src/killswitch/kill-switch-events.ts`): this folder is ranked below the kill switch and
 * does not import it.
 */
export interface BusEvents {
  /** The endpoint's consumer stopped (it is being re-created) or cannot receive (its client reconnects). */
  'consumer.down': ConsumerChange;
  /** The endpoint's consumer consumes again. */
  'consumer.up': ConsumerChange;
}

export type BusEventName = keyof BusEvents;
export type BusEventListener<E extends BusEventName> = (event: BusEvents[E]) => void | Promise<void>;

/**
 * A typed, synchronous event emitter. Listeners run in subscription order when an event is
 * emitted; one that throws (or rejects) is reported to `onListenerError` and never stops the others
 * or the code that emitted.
 */
export class EventHub<M extends object> {
  readonly #listeners = new Map<keyof M, Set<(event: never) => void | Promise<void>>>();

  constructor(private readonly onListenerError: (error: unknown, event: keyof M) => void) {}

  /** Subscribes; returns a function that unsubscribes (idempotent). */
  on<E extends keyof M>(event: E, listener: (payload: M[E]) => void | Promise<void>): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    const entry = listener as (event: never) => void | Promise<void>;
    set.add(entry);
    return () => {
      this.#listeners.get(event)?.delete(entry);
    };
  }

  emit<E extends keyof M>(event: E, payload: M[E]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        const result = (listener as (payload: M[E]) => void | Promise<void>)(payload);
        if (result instanceof Promise) result.catch((error: unknown) => this.onListenerError(error, event));
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }

  listenerCount(event: keyof M): number {
    return this.#listeners.get(event)?.size ?? 0;
  }
}
