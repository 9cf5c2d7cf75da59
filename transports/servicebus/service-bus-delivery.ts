import type { ServiceBusMessage, ServiceBusReceivedMessage, ServiceBusReceiver } from '@azure/service-bus';
import type { CopyTarget, FaultDetails, TransportCapabilities } from '../../src/transport-core/index.js';
import { deliveryCountOf, SettlingDelivery, stringHeaders } from '../../src/transport-core/index.js';
import { bodyOf, copyOf, messageIdOf } from './message-mapping.js';
import { settlementError } from './settlement-error.js';
import type { SettlementSequencer } from './settlement-sequencer.js';

/** Capabilities; `ordering` is `session` when the transport is configured with sessions. */
export function serviceBusCapabilities(sessions: boolean): TransportCapabilities {
  return {
    nativeDelay: true,
    nativeDeadLetter: true,
    deliveryCount: 'native',
    ordering: sessions ? 'session' : 'none',
    durable: true,
  };
}

/** What a delivery needs from its consumer and transport. */
export interface DeliveryDeps {
  readonly address: string;
  /** Schedules a copy on the delivery's own queue; resolves once the broker has it. */
  readonly schedule: (message: ServiceBusMessage, at: Date) => Promise<void>;
  readonly now: () => number;
  /** Called exactly once, when the delivery stops holding a slot (settled, or lost or given back). */
  readonly onDone: () => void;
  /** Whether the message belongs to a session (its lock is the session's lock). */
  readonly session: boolean;
  /** The settlement order of the receiver link the message came on. */
  readonly sequencer: SettlementSequencer;
}

/**
 * One peek-locked Service Bus message, on the settlement kernel. Its primitives: complete;
 * abandon (give back, properties merged); a scheduled copy on its own queue (the broker's delay,
 * for a delayed release: the kernel completes the original after it); the native dead-letter
 * subqueue (`DeadLetterReason` = fault reason, `DeadLetterErrorDescription` = fault description,
 * the fault headers as properties); lock renewal. `MessageLockLost`/`SessionLockLost` become
 * `LockLostError`.
 */
export class ServiceBusDelivery extends SettlingDelivery {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly deliveryCount: number;

  constructor(
    private readonly message: ServiceBusReceivedMessage,
    private readonly receiver: ServiceBusReceiver,
    private readonly deps: DeliveryDeps,
  ) {
    super();
    this.body = bodyOf(message);
    this.headers = stringHeaders(message.applicationProperties);
    // The SDK counts from 0; a scheduled copy (a delayed release) carries the count it replaces.
    this.deliveryCount = deliveryCountOf(this.headers, message.deliveryCount ?? 0);
  }

  /** A message of a session came from a queue of a transport configured with sessions. */
  protected get capabilities(): TransportCapabilities {
    return serviceBusCapabilities(this.deps.session);
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

  protected override ended(): void {
    this.deps.onDone();
  }

  /** Abandons the message without a settlement by the endpoint (consumer close). */
  async handBack(): Promise<void> {
    if (this.markLost()) await this.returnUnchanged();
  }

  #abandon(properties?: Readonly<Record<string, string>>): Promise<void> {
    return this.deps.sequencer.run('other', () => this.receiver.abandonMessage(this.message, { ...properties }));
  }

  async #broker(what: string, operation: () => Promise<void>): Promise<void> {
    try {
      await operation();
    } catch (error) {
      throw settlementError(error, `${what} of message ${this.messageId} in "${this.address}"`);
    }
  }

  protected acknowledge(): Promise<void> {
    return this.#broker('complete', () =>
      this.deps.sequencer.run('accept', () => this.receiver.completeMessage(this.message)),
    );
  }

  protected giveBack(
    headers: Readonly<Record<string, string>> | undefined,
    delayMs: number,
  ): Promise<void> | undefined {
    // A delay is a scheduled copy (the kernel's copy-then-remove), not an abandon.
    if (delayMs > 0) return undefined;
    return this.#broker('abandon', () => this.#abandon(headers));
  }

  /**
   * Abandon; when even that fails (a lost lock, a closed link), the lock is let go of: it expires
   * and the broker redelivers.
   */
  protected async returnUnchanged(): Promise<void> {
    await this.#abandon().catch(() => {});
  }

  protected async copy(target: CopyTarget, headers: Record<string, string>): Promise<undefined> {
    const at = new Date(this.deps.now() + (target.kind === 'release' ? target.delayMs : 0));
    await this.#broker('delayed release', () => this.deps.schedule(copyOf(this.message, headers), at));
  }

  protected override nativeDeadLetter(fault: FaultDetails, headers: Record<string, string>): Promise<void> {
    return this.#broker('dead-letter', () =>
      this.deps.sequencer.run('other', () =>
        this.receiver.deadLetterMessage(this.message, {
          ...headers,
          deadLetterReason: fault.reason,
          deadLetterErrorDescription: fault.description,
        }),
      ),
    );
  }

  protected override async extendLock(): Promise<void> {
    await this.#broker('renew lock', async () => {
      if (this.deps.session && 'renewSessionLock' in this.receiver) {
        await (this.receiver as { renewSessionLock(): Promise<Date> }).renewSessionLock();
      } else {
        await this.receiver.renewMessageLock(this.message);
      }
    });
  }
}
