import type { Channel, ConfirmChannel, GetMessage } from 'amqplib';
import type {
  Clock,
  DeadLetteredMessage,
  DeadLetterQueue,
  DeadLetterScanOptions,
  PurgeResult,
  PurgeSelection,
  RedriveResult,
  RedriveSelection,
} from '../../src/transport-core/index.js';
import { faultFromHeaders, planSelection, redriveCopyHeaders, TransportError } from '../../src/transport-core/index.js';
import { copyProperties, toStringHeaders, withoutBrokerHeaders } from './amqp-headers.js';
import { DEAD_LETTER_ID_HEADER } from './rabbitmq-delivery.js';
import { queueNames } from './topology.js';

/** Copies in flight during a redrive before the next dead letter is taken. */
const REDRIVE_WINDOW = 100;
/** How long an operation waits for the messages it handed back to be counted again. */
const RETURN_WAIT_MS = 2_000;

/** A short-lived channel and the function that closes it (giving its slot in the channel budget back). */
export interface ShortLived<C> {
  readonly channel: C;
  close(): Promise<void>;
}

/** Opens the short-lived channels a dead-letter operation needs, within the transport's channel budget. */
export interface ShortLivedChannels {
  channel(what: string): Promise<ShortLived<Channel>>;
  confirmChannel(what: string): Promise<ShortLived<ConfirmChannel>>;
}

/**
 * The `<queue>.dlq` queue of one endpoint, read with `basic.get` on a short-lived channel of its own.
 * Peek takes messages without acking and closes the channel, which puts them back in order. Redrive
 * publishes each chosen message's copy to the endpoint queue with confirms (mandatory: a missing
 * endpoint queue fails the redrive) and acks the dead letter only after the broker confirmed it:
 * a crash in between duplicates, never loses. Messages a peek or redrive holds at that moment are
 * invisible to a concurrent peek or redrive.
 */
export class RabbitmqDeadLetterQueue implements DeadLetterQueue {
  readonly #names: { queue: string; deadLetter: string };

  constructor(
    address: string,
    private readonly channels: ShortLivedChannels,
    private readonly clock: Clock,
  ) {
    this.#names = queueNames(address);
  }

  async count(): Promise<number> {
    const { channel, close } = await this.channels.channel('counting dead letters');
    try {
      return (await channel.checkQueue(this.#names.deadLetter)).messageCount;
    } catch (error) {
      if (isNotFound(error)) return 0;
      throw wrap('counting dead letters', error);
    } finally {
      await close();
    }
  }

  async peek(limit = 100): Promise<DeadLetteredMessage[]> {
    const { channel, close } = await this.channels.channel('peeking dead letters');
    const found: DeadLetteredMessage[] = [];
    try {
      while (found.length < limit) {
        const message = await channel.get(this.#names.deadLetter, { noAck: false });
        if (message === false) break;
        found.push(toDeadLettered(this.#names.deadLetter, message));
      }
    } catch (error) {
      if (!isNotFound(error)) throw wrap('peeking dead letters', error);
    } finally {
      // Closing returns every message taken above to the queue, in its place.
      await close();
    }
    return found;
  }

  async *scan(options: DeadLetterScanOptions = {}): AsyncGenerator<readonly DeadLetteredMessage[]> {
    const pageSize = Math.max(1, options.pageSize ?? 100);
    const { channel, close } = await this.channels.channel('scanning dead letters');
    let held = 0;
    let settled = 0;
    try {
      let waiting: number;
      try {
        waiting = (await channel.checkQueue(this.#names.deadLetter)).messageCount;
      } catch (error) {
        if (isNotFound(error)) return;
        throw wrap('scanning dead letters', error);
      }
      const end = Math.min(waiting, options.max ?? waiting);
      settled = waiting;
      let page: DeadLetteredMessage[] = [];
      for (let taken = 0; taken < end; taken++) {
        let message: GetMessage | false;
        try {
          message = await channel.get(this.#names.deadLetter, { noAck: false });
        } catch (error) {
          throw wrap('scanning dead letters', error);
        }
        if (message === false) break;
        held++;
        page.push(toDeadLettered(this.#names.deadLetter, message));
        if (page.length >= pageSize) {
          yield page;
          page = [];
        }
      }
      if (page.length > 0) yield page;
    } finally {
      // Every message the scan took goes back to the queue, in its place.
      await close();
      if (held > 0) await this.#awaitReturned(settled);
    }
  }

  async purge(selection: PurgeSelection): Promise<PurgeResult> {
    const { channel, close } = await this.channels.channel('purging dead letters');
    const plan = planSelection(selection);
    const removed: string[] = [];
    let atStart = 0;
    let held = 0;
    try {
      // Bound the scan by what was there at the start, as redrive does.
      atStart = (await channel.checkQueue(this.#names.deadLetter)).messageCount;
      const waiting = scanBound(atStart, plan.ids);
      for (let taken = 0; taken < waiting && !plan.done(removed.length); taken++) {
        const message = await channel.get(this.#names.deadLetter, { noAck: false });
        if (message === false) break;
        const dead = toDeadLettered(this.#names.deadLetter, message);
        if (!plan.wants(dead, removed.length)) {
          held++;
          continue; // held, returned on close
        }
        channel.ack(message);
        removed.push(dead.messageId);
      }
    } catch (error) {
      if (isNotFound(error)) return { removed: 0, ids: [] };
      throw wrap(`purging dead letters of "${this.#names.queue}" (${removed.length} removed so far)`, error);
    } finally {
      // The acks go out before the close, on the same channel: the broker applies them first.
      await close();
      if (held > 0) await this.#awaitReturned(atStart - removed.length);
    }
    return { removed: removed.length, ids: removed };
  }

  async redrive(selection: RedriveSelection, reason: string): Promise<RedriveResult> {
    const { channel, close } = await this.channels.confirmChannel('redriving dead letters');
    let returned: string | undefined;
    channel.on('return', (message: GetMessage) => {
      returned = message.fields.routingKey;
    });
    const plan = planSelection(selection);
    const moved: string[] = [];
    let atStart = 0;
    let held = 0;
    try {
      // Bound the scan by what was there at the start: new dead letters wait for the next redrive.
      atStart = (await channel.checkQueue(this.#names.deadLetter)).messageCount;
      const waiting = scanBound(atStart, plan.ids);
      const now = new Date(this.clock.now());
      let taken = 0;
      while (taken < waiting && !plan.done(moved.length)) {
        // Take a window of dead letters first, then copy them all and wait for the confirms:
        // alternating one get with one publish on a channel waits out TCP's delayed acks
        // (measured: 50 ms a message on a quorum queue, against 2 ms in windows).
        const window: { message: GetMessage; headers: Record<string, string> }[] = [];
        while (window.length < REDRIVE_WINDOW && taken < waiting && !plan.done(moved.length)) {
          const message = await channel.get(this.#names.deadLetter, { noAck: false });
          if (message === false) {
            taken = waiting;
            break;
          }
          taken++;
          const dead = toDeadLettered(this.#names.deadLetter, message);
          if (!plan.wants(dead, moved.length)) {
            held++;
            continue; // held, returned on close
          }
          const headers = withoutBrokerHeaders(redriveCopyHeaders(dead.headers, reason, now, [DEAD_LETTER_ID_HEADER]));
          window.push({ message, headers });
          moved.push(dead.messageId);
        }
        await Promise.all(
          window.map(({ message, headers }) => this.#copyThenAck(channel, message, headers, () => returned)),
        );
      }
    } catch (error) {
      throw wrap(`redriving dead letters of "${this.#names.queue}" (${moved.length} chosen so far)`, error);
    } finally {
      await close();
      if (held > 0) await this.#awaitReturned(atStart - moved.length);
    }
    return { moved: moved.length, ids: moved };
  }

  /**
   * After an operation handed back the messages it held (by closing its channel), waits until the
   * queue counts `atLeast` ready messages again, at most {@link RETURN_WAIT_MS}: a quorum queue
   * requeues them through its log after the close is confirmed, and the next operation's count (its
   * scan bound) must see them. Another client removing dead letters meanwhile only makes this wait
   * its bound.
   */
  async #awaitReturned(atLeast: number): Promise<void> {
    if (atLeast <= 0) return;
    const deadline = Date.now() + RETURN_WAIT_MS;
    let counting: ShortLived<Channel> | undefined;
    try {
      counting = await this.channels.channel('counting returned dead letters');
      while ((await counting.channel.checkQueue(this.#names.deadLetter)).messageCount < atLeast) {
        if (Date.now() >= deadline) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } catch {
      // Only a wait for the count: the operation itself is done.
    } finally {
      await counting?.close();
    }
  }

  #copyThenAck(
    channel: ConfirmChannel,
    message: GetMessage,
    headers: Record<string, string>,
    returned: () => string | undefined,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const options = { ...copyProperties(message.properties, headers), mandatory: true };
      channel.publish('', this.#names.queue, message.content, options, (error: unknown) => {
        if (returned() !== undefined) {
          reject(
            new TransportError(`endpoint queue "${this.#names.queue}" does not exist; dead letters left in place`, {
              retryable: false,
            }),
          );
        } else if (error) {
          reject(error);
        } else {
          channel.ack(message);
          resolve();
        }
      });
    });
  }
}

function toDeadLettered(queue: string, message: GetMessage): DeadLetteredMessage {
  const headers = toStringHeaders(message.properties.headers as Record<string, unknown> | undefined);
  const messageId = typeof message.properties.messageId === 'string' ? message.properties.messageId : '';
  return {
    deadLetterId: headers[DEAD_LETTER_ID_HEADER] ?? `${queue}#${messageId}`,
    messageId,
    body: message.content,
    headers,
    fault: faultFromHeaders(headers),
  };
}

/**
 * How many dead letters a redrive or purge may take from the head of the queue: those waiting when
 * it starts. With chosen ids, as many more as there are ids: the messages an earlier operation
 * held and handed back on closing its channel (its skipped, non-chosen ones) may not be counted yet
 * — a quorum queue requeues them through its log, after the channel's close is confirmed — and a
 * bound that missed them stopped short of the last chosen ones ("no longer there"). The scan still
 * ends once every chosen id is found or the queue has nothing ready.
 */
function scanBound(waiting: number, ids: ReadonlySet<string> | undefined): number {
  return ids ? waiting + ids.size : waiting;
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 404;
}

function wrap(what: string, error: unknown): TransportError {
  if (error instanceof TransportError) return error;
  return new TransportError(`${what} failed: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
}
