import type { ServiceBusClient, ServiceBusReceivedMessage, ServiceBusSender } from '@azure/service-bus';
// The SDK's own dependency: sequence numbers are `Long`s in its API.
import Long from 'long';
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
  deadLettered,
  peekByScan,
  planSelection,
  redriveHeaders,
  stringHeaders,
  walkHead,
} from '../../src/transport-core/index.js';
import { bodyOf, copyOf, DeadLetterProperty, messageIdOf } from './message-mapping.js';

const PAGE = 100;

export interface ServiceBusDeadLetterQueueDeps {
  readonly client: ServiceBusClient;
  /** The queue whose `$DeadLetterQueue` subqueue this is; redrive sends back to it. */
  readonly queue: string;
  readonly sender: () => ServiceBusSender;
  readonly clock: Clock;
}

/**
 * The native `<queue>/$DeadLetterQueue` subqueue of an endpoint. `deadLetterId` is the dead
 * letter's sequence number. Headers include the service's `DeadLetterReason` and
 * `DeadLetterErrorDescription` (so `MaxDeliveryCountExceeded`, decided by the broker, is visible);
 * `fault` is set when Sluice dead-lettered the message.
 *
 * Redrive receives dead letters under a lock, sends a copy with the fault, attempt and delivery
 * count state removed and the redrive stamped to the queue, and only then completes the dead
 * letter: a crash in between duplicates, never loses. It looks at no more messages than were in the
 * subqueue when it started; messages not selected are abandoned back into the subqueue at the end.
 */
export class ServiceBusDeadLetterQueue implements DeadLetterQueue {
  constructor(private readonly deps: ServiceBusDeadLetterQueueDeps) {}

  #receiver() {
    return this.deps.client.createReceiver(this.deps.queue, {
      subQueueType: 'deadLetter',
      receiveMode: 'peekLock',
      skipParsingBodyAsJson: true,
      skipConvertingDate: true,
    });
  }

  /** Peeks the subqueue oldest first, `pageSize` at a time, at most `max` messages. */
  async *#pages(pageSize: number, max: number): AsyncGenerator<ServiceBusReceivedMessage[]> {
    const receiver = this.#receiver();
    try {
      // An explicit start: the SDK's implicit peek cursor is shared by every receiver of the entity.
      let from = Long.ZERO;
      for (let left = max; left > 0; ) {
        const page = await receiver.peekMessages(Math.min(pageSize, left), { fromSequenceNumber: from });
        const last = page.at(-1);
        if (last === undefined) break;
        yield page;
        left -= page.length;
        from = Long.fromValue(last.sequenceNumber ?? from).add(1);
      }
    } finally {
      await receiver.close().catch(() => {});
    }
  }

  peek(limit = 100): Promise<DeadLetteredMessage[]> {
    return peekByScan(this.scan({ max: limit }));
  }

  async *scan(options: DeadLetterScanOptions = {}): AsyncGenerator<readonly DeadLetteredMessage[]> {
    const pageSize = Math.max(1, Math.min(PAGE, options.pageSize ?? PAGE));
    for await (const page of this.#pages(pageSize, options.max ?? Number.POSITIVE_INFINITY)) {
      yield page.map(toDeadLettered);
    }
  }

  async purge(selection: PurgeSelection): Promise<PurgeResult> {
    const removed = await this.#take(selection, async () => {});
    return { removed: removed.length, ids: removed };
  }

  async count(): Promise<number> {
    let waiting = 0;
    for await (const page of this.#pages(PAGE, Number.MAX_SAFE_INTEGER)) waiting += page.length;
    return waiting;
  }

  async redrive(selection: RedriveSelection, reason: string): Promise<RedriveResult> {
    const moved = await this.#take(selection, async (message) => {
      const now = new Date(this.deps.clock.now());
      const headers = redriveHeaders(stringHeaders(message.applicationProperties), reason, now, [
        DeadLetterProperty.reason,
        DeadLetterProperty.description,
      ]);
      // The copy is on the queue before the dead letter goes.
      await this.deps.sender().sendMessages(copyOf(message, headers));
    });
    return { moved: moved.length, ids: moved };
  }

  /**
   * Receives dead letters under a lock, oldest first, no more than were waiting at the start (or
   * the `limit`); runs `act` on each chosen one and then completes it; abandons the others back
   * into the subqueue at the end. Resolves with the message ids of those completed.
   */
  async #take(
    selection: RedriveSelection | PurgeSelection,
    act: (message: ServiceBusReceivedMessage) => Promise<void>,
  ): Promise<string[]> {
    const plan = planSelection(selection);
    const bound = 'limit' in selection ? plan.limit : await this.count();
    const receiver = this.#receiver();
    const kept: ServiceBusReceivedMessage[] = [];
    try {
      return await walkHead({
        plan,
        bound,
        take: (max) => receiver.receiveMessages(Math.min(PAGE, max), { maxWaitTimeInMs: 1_000 }),
        read: (message) => ({ messageId: messageIdOf(message), deadLetterId: String(message.sequenceNumber) }),
        chosen: async (message) => {
          await act(message);
          await receiver.completeMessage(message);
        },
        skipped: (message) => kept.push(message),
      });
    } finally {
      await Promise.allSettled(kept.map((m) => receiver.abandonMessage(m)));
      await receiver.close().catch(() => {});
    }
  }
}

function toDeadLettered(m: ServiceBusReceivedMessage): DeadLetteredMessage {
  return deadLettered(String(m.sequenceNumber), messageIdOf(m), bodyOf(m), stringHeaders(m.applicationProperties));
}
