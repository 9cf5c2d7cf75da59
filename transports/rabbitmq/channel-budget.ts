import type { Channel, ChannelModel } from 'amqplib';
import type { Clock } from '../../src/transport-core/index.js';
import { errorText, Fifo, TransportError } from '../../src/transport-core/index.js';

/** Most short-lived channels (declarations, dead-letter reads) one transport has open at once. */
export const MAX_SHORT_LIVED_CHANNELS = 8;

interface Waiter {
  grant(): void;
  /** Set once the waiter gave up (timeout): its turn passes to the next one. */
  gone: boolean;
}

/**
 * Bounds the short-lived channels a transport has open at once. An AMQP connection has a fixed
 * number of channels (RabbitMQ's `channel_max`, 2047 by default): without a bound, thousands of
 * concurrent callers that each open one exhaust them ("No channels left to allocate") and fail.
 * Callers beyond the bound wait their turn in arrival order, each up to its own deadline, then fail
 * with a retryable `TransportError`. Long-lived channels (one per consumer, the publish channel) are
 * not counted here.
 */
export class ChannelBudget {
  #free: number;
  readonly #waiting = new Fifo<Waiter>();

  constructor(
    readonly max: number,
    private readonly clock: Clock,
  ) {
    this.#free = max;
  }

  /** Channels in use now (for tests and diagnostics). */
  get inUse(): number {
    return this.max - this.#free;
  }

  /**
   * Waits for a free slot (at most `timeoutMs`) and resolves with the function that gives it back.
   * The release function is idempotent; call it in a `finally` once the channel is closed.
   */
  acquire(timeoutMs: number, what: string): Promise<() => void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        gone: false,
        grant: () => {
          cancel();
          resolve(this.#releaser());
        },
      };
      const cancel = this.clock.setTimer(() => {
        waiter.gone = true;
        reject(
          new TransportError(
            `${what}: no channel free within ${timeoutMs} ms (${this.max} short-lived channels in use)`,
          ),
        );
      }, timeoutMs);
      this.#waiting.push(waiter);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (let next = this.#waiting.shift(); next !== undefined; next = this.#waiting.shift()) {
        if (next.gone) continue;
        // The slot passes straight to the next waiter: `#free` does not change.
        next.grant();
        return;
      }
      this.#free++;
    };
  }
}

/** A short-lived channel and the function that closes it (giving its slot in the channel budget back). */
export interface ShortLived {
  readonly channel: Channel;
  close(): Promise<void>;
}

/**
 * Opens a short-lived channel within the channel budget (waiting at most `timeoutMs` for a slot)
 * and resolves with it and the function that closes it and gives the slot back.
 */
export async function openShortLived(
  budget: ChannelBudget,
  model: ChannelModel,
  what: string,
  timeoutMs: number,
): Promise<ShortLived> {
  const release = await budget.acquire(timeoutMs, what);
  let channel: Channel;
  try {
    channel = await model.createChannel();
  } catch (error) {
    release();
    throw new TransportError(`${what}: cannot open a channel: ${errorText(error)}`, { cause: error });
  }
  channel.on('error', () => {});
  return {
    channel,
    close: async () => {
      try {
        await channel.close().catch(() => {});
      } finally {
        release();
      }
    },
  };
}
