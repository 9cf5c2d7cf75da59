import type { ServiceBusMessage, ServiceBusReceivedMessage, ServiceBusReceiver } from '@azure/service-bus';
import type { Delivery, FaultDetails, ReleaseOptions } from '../../src/transport/index.js';
import { AlreadySettledError, deadLetterHeaders, LockLostError, SluiceHeader } from '../../src/transport/index.js';
import { bodyOf, copyOf, headersOf, messageIdOf, sluiceDeliveryCount } from './message-mapping.js';
import { settlementError } from './settlement-error.js';
import type { SettlementSequencer } from './settlement-sequencer.js';

/** What a delivery needs from its consumer and transport. */
export interface DeliveryDeps {
  readonly address: string;
  /** Schedules a copy on the delivery's own queue; resolves once the broker has it. */
  readonly schedule: (message: ServiceBusMessage, at: Date) => Promise<void>;
  readonly now: () => number;
  /** Called exactly once, when the delivery stops holding a slot (settled, failed or returned). */
  readonly onDone: () => void;
  /** Whether the message belongs to a session (its lock is the session's lock). */
  readonly session: boolean;
  /** The settlement order of the receiver link the message came on. */
  readonly sequencer: SettlementSequencer;
}

type State = 'locked' | 'settling' | 'settled' | 'returned';

/**
 * One peek-locked Service Bus message. Settlement mapping:
 * complete → complete; release → abandon (headers as properties to modify), or with a delay:
 * schedule a copy, then complete the original; deadLetter → the native dead-letter subqueue with
 * `DeadLetterReason` = fault reason, `DeadLetterErrorDescription` = fault description and the
 * fault headers as properties. A lost lock rejects with `LockLostError`.
 */
export class ServiceBusDelivery implements Delivery {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly deliveryCount: number;
  #state: State = 'locked';

  constructor(
    private readonly message: ServiceBusReceivedMessage,
    private readonly receiver: ServiceBusReceiver,
    private readonly deps: DeliveryDeps,
  ) {
    this.body = bodyOf(message);
    this.headers = headersOf(message);
    this.deliveryCount = sluiceDeliveryCount(message, this.headers);
  }

  get deliveryId(): string {
    return `${this.deps.address}#${this.message.lockToken ?? String(this.message.sequenceNumber)}`;
  }
  get partitionKey(): string | undefined {
    return this.message.sessionId;
  }
  get address(): string {
    return this.deps.address;
  }
  get messageId(): string {
    return messageIdOf(this.message);
  }

  /** The consumer gave the message back (close): later settlements report a lost lock. */
  markReturned(): boolean {
    if (this.#state !== 'locked') return false;
    this.#state = 'returned';
    this.deps.onDone();
    return true;
  }

  /** Abandons the message without a settlement by the endpoint (consumer close). */
  async giveBack(): Promise<void> {
    if (!this.markReturned()) return;
    await this.deps.sequencer
      .run('other', () => this.receiver.abandonMessage(this.message))
      .catch(() => {
        // a lost lock or a closed link: the broker redelivers once the lock expires either way
      });
  }

  async #settle(what: string, operation: () => Promise<void>): Promise<void> {
    if (this.#state === 'returned') {
      throw new LockLostError(`${what} of message ${this.messageId} in "${this.address}": it was returned on close`);
    }
    if (this.#state !== 'locked') throw new AlreadySettledError(this.deliveryId);
    this.#state = 'settling';
    try {
      await operation();
      this.#state = 'settled';
    } catch (error) {
      // Whatever failed, this delivery is over: its lock is lost or about to be, and the broker redelivers.
      this.#state = 'settled';
      throw settlementError(error, `${what} of message ${this.messageId} in "${this.address}"`);
    } finally {
      this.deps.onDone();
    }
  }

  complete(): Promise<void> {
    return this.#settle('complete', () => this.#complete());
  }

  #complete(): Promise<void> {
    return this.deps.sequencer.run('accept', () => this.receiver.completeMessage(this.message));
  }

  release(options: ReleaseOptions = {}): Promise<void> {
    const delayMs = options.delayMs ?? 0;
    const headers = options.headers ?? {};
    if (delayMs <= 0) {
      return this.#settle('abandon', () =>
        this.deps.sequencer.run('other', () => this.receiver.abandonMessage(this.message, { ...headers })),
      );
    }
    return this.#settle('delayed release', async () => {
      // Copy first, then complete: a crash in between duplicates the message, never loses it.
      const copy = copyOf(this.message, {
        ...this.headers,
        ...headers,
        [SluiceHeader.deliveryCount]: String(this.deliveryCount),
      });
      await this.deps.schedule(copy, new Date(this.deps.now() + delayMs));
      await this.#complete();
    });
  }

  deadLetter(fault: FaultDetails): Promise<void> {
    return this.#settle('dead-letter', () =>
      this.deps.sequencer.run('other', () =>
        this.receiver.deadLetterMessage(this.message, {
          ...deadLetterHeaders(this.headers, fault),
          deadLetterReason: fault.reason,
          deadLetterErrorDescription: fault.description,
        }),
      ),
    );
  }

  async renewLock(): Promise<void> {
    if (this.#state === 'returned') {
      throw new LockLostError(`message ${this.deliveryId} was given back to the broker; it comes again`);
    }
    if (this.#state !== 'locked') return;
    try {
      if (this.deps.session && 'renewSessionLock' in this.receiver) {
        await (this.receiver as { renewSessionLock(): Promise<Date> }).renewSessionLock();
      } else {
        await this.receiver.renewMessageLock(this.message);
      }
    } catch (error) {
      throw settlementError(error, `renew lock of message ${this.messageId} in "${this.address}"`);
    }
  }
}
