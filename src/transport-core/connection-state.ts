import { TransportError } from '../errors/sluice-error.js';
import type { TransportState } from './transport.js';

/**
 * A transport's `idle → connecting → connected → closed` state and its two errors, neither
 * retryable: connecting once closed, and using the transport while not connected.
 */
export class ConnectionState {
  #state: TransportState = 'idle';

  /** `name` starts the errors: "kafka transport is closed". */
  constructor(private readonly name: string) {}

  get state(): TransportState {
    return this.#state;
  }

  /** Runs `open` unless already connected (back to `idle` when it throws); throws once closed. */
  async connect(open?: () => Promise<void>): Promise<void> {
    if (this.#state === 'closed') throw new TransportError(`${this.name} transport is closed`, { retryable: false });
    if (this.#state === 'connected') return;
    this.#state = 'connecting';
    try {
      if (open) await open();
    } catch (error) {
      this.#state = 'idle';
      throw error;
    }
    this.#state = 'connected';
  }

  assertConnected(): void {
    if (this.#state !== 'connected') {
      throw new TransportError(`${this.name} transport is ${this.#state}, not connected`, { retryable: false });
    }
  }

  /** Marks it closed; false when it already was (close is idempotent). */
  close(): boolean {
    if (this.#state === 'closed') return false;
    this.#state = 'closed';
    return true;
  }
}
