import type { GetMessage, Options } from 'amqplib';
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
import {
  type DeadLetterPlan,
  deadLettered,
  peekByScan,
  planSelection,
  redriveHeaders,
  stringHeaders,
  transportFailure,
  walkHead,
} from '../../src/transport-core/index.js';
import { BROKER_HEADERS, copyProperties } from './amqp-headers.js';
import type { ShortLived } from './channel-budget.js';
import { DEAD_LETTER_ID_HEADER } from './rabbitmq-delivery.js';
import { queueNames } from './topology.js';

/** Copies in flight during a redrive before the next dead letter is taken. */
const REDRIVE_WINDOW = 100;
/** How long an operation waits for the messages it handed back to be counted again. */
const RETURN_WAIT_MS = 2_000;

/** What a dead-letter operation needs of its transport. */
export interface DeadLetterChannels {
  /** A short-lived channel, within the transport's channel budget. */
  channel(what: string): Promise<ShortLived>;
  /** Publishes a copy to `queue` with confirms and `mandatory`; resolves once the broker has it. */
  publishCopy(queue: string, content: Buffer, options: Options.Publish): Promise<void>;
}

/**
 * The `<queue>.dlq` queue of one endpoint, read with `basic.get` on a short-lived channel of its own.
 * Peek takes messages without acking and closes the channel, which puts them back in order. Redrive
 * publishes each chosen message's copy to the endpoint queue with confirms, as the transport publishes
 * every copy (mandatory: a missing endpoint queue fails the redrive), and acks the dead letter only
 * after the broker confirmed it:
 * a crash in between duplicates, never loses. Messages a peek or redrive holds at that moment are
 * invisible to a concurrent peek or redrive.
 */
export class RabbitmqDeadLetterQueue implements DeadLetterQueue {
  readonly #names: { queue: string; deadLetter: string };

  constructor(
    address: string,
    private readonly channels: DeadLetterChannels,
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
      throw transportFailure('counting dead letters', error);
    } finally {
      await close();
    }
  }

  /** The scan's first `limit` (its hold on them ends, and they are back, before it resolves). */
  peek(limit = 100): Promise<DeadLetteredMessage[]> {
    return peekByScan(this.scan({ max: limit }));
  }

  async *scan(options: DeadLetterScanOptions = {}): AsyncGenerator<readonly DeadLetteredMessage[]> {
    const pageSize = Math.max(1, options.pageSize ?? 100);
    const { channel, close } = await this.channels.channel('scanning dead letters');
    let held = 0;
    let waiting = 0;
    try {
      waiting = (await channel.checkQueue(this.#names.deadLetter)).messageCount;
      const end = Math.min(waiting, options.max ?? waiting);
      let page: DeadLetteredMessage[] = [];
      for (let taken = 0; taken < end; taken++) {
        const message = await channel.get(this.#names.deadLetter, { noAck: false });
        if (message === false) break;
        held++;
        page.push(toDeadLettered(this.#names.deadLetter, message));
        if (page.length >= pageSize) {
          yield page;
          page = [];
        }
      }
      if (page.length > 0) yield page;
    } catch (error) {
      // No dead-letter queue yet: nothing to scan. (A loop breaking out of the scan throws nothing here.)
      if (!isNotFound(error)) throw transportFailure('scanning dead letters', error);
    } finally {
      // Every message the scan took goes back to the queue, in its place.
      await close();
      if (held > 0) await this.#awaitReturned(waiting);
    }
  }

  async purge(selection: PurgeSelection): Promise<PurgeResult> {
    const removed: string[] = [];
    try {
      const opened = await this.channels.channel('purging dead letters');
      await this.#take(opened, planSelection(selection), removed, (message) => opened.channel.ack(message));
    } catch (error) {
      if (isNotFound(error)) return { removed: 0, ids: [] };
      throw transportFailure(
        `purging dead letters of "${this.#names.queue}" (${removed.length} removed so far)`,
        error,
      );
    }
    return { removed: removed.length, ids: removed };
  }

  async redrive(selection: RedriveSelection, reason: string): Promise<RedriveResult> {
    const opened = await this.channels.channel('redriving dead letters');
    const moved: string[] = [];
    const now = new Date(this.clock.now());
    // Take a window of dead letters first, then copy them all and wait for the confirms:
    // alternating one get with one publish waits out TCP's delayed acks
    // (measured: 50 ms a message on a quorum queue, against 2 ms in windows).
    let window: { message: GetMessage; options: Options.Publish }[] = [];
    const flush = async () => {
      const copies = window.map(async ({ message, options }) => {
        await this.channels.publishCopy(this.#names.queue, message.content, options);
        opened.channel.ack(message);
      });
      window = [];
      await Promise.all(copies);
    };
    try {
      await this.#take(
        opened,
        planSelection(selection),
        moved,
        async (message, dead) => {
          const headers = redriveHeaders(dead.headers, reason, now, [DEAD_LETTER_ID_HEADER, ...BROKER_HEADERS]);
          window.push({ message, options: copyProperties(message.properties, headers) });
          if (window.length >= REDRIVE_WINDOW) await flush();
        },
        flush,
      );
    } catch (error) {
      throw transportFailure(`redriving dead letters of "${this.#names.queue}" (${moved.length} chosen so far)`, error);
    }
    return { moved: moved.length, ids: moved };
  }

  /**
   * Takes dead letters from the head of the queue, no more than were waiting when it starts, until
   * the plan has chosen enough: each chosen one's message id goes to `ids` and the message to
   * `chosen`; the others stay held, returned on close. Runs `last` before closing the channel, then
   * waits for what it held to be counted again.
   *
   * With chosen ids, it may take as many more as there are ids: the messages an earlier operation
   * held and handed back on closing its channel (its skipped, non-chosen ones) may not be counted yet
   * — a quorum queue requeues them through its log, after the channel's close is confirmed — and a
   * bound that missed them stopped short of the last chosen ones ("no longer there"). The walk still
   * ends once every chosen id is found or the queue has nothing ready.
   */
  async #take(
    opened: ShortLived,
    plan: DeadLetterPlan,
    ids: string[],
    chosen: (message: GetMessage, dead: DeadLetteredMessage) => unknown,
    last?: () => Promise<void>,
  ): Promise<void> {
    let atStart = 0;
    let held = 0;
    const queue = this.#names.deadLetter;
    try {
      // Bound the scan by what was there at the start: new dead letters wait for the next operation.
      atStart = (await opened.channel.checkQueue(queue)).messageCount;
      const take = async () => {
        const message = await opened.channel.get(queue, { noAck: false });
        return message === false ? [] : [message];
      };
      const read = (message: GetMessage) => toDeadLettered(queue, message);
      // One not chosen stays held, returned on close.
      const bound = plan.ids ? atStart + plan.ids.size : atStart;
      await walkHead({ plan, bound, take, read, chosen, skipped: () => held++ }, ids);
      await last?.();
    } finally {
      // Acks go out before the close, on the same channel: the broker applies them first.
      await opened.close();
      if (held > 0) await this.#awaitReturned(atStart - ids.length);
    }
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
    let counting: ShortLived | undefined;
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
}

function toDeadLettered(queue: string, message: GetMessage): DeadLetteredMessage {
  const headers = stringHeaders(message.properties.headers);
  const messageId = typeof message.properties.messageId === 'string' ? message.properties.messageId : '';
  return deadLettered(headers[DEAD_LETTER_ID_HEADER] ?? `${queue}#${messageId}`, messageId, message.content, headers);
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 404;
}
