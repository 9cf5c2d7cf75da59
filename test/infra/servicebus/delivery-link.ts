import type { Delivery, Sender } from 'rhea';
import { messageLockLost, sessionLockLost } from './amqp-errors.js';
import { type LockToken, newLockToken } from './lock-token.js';
import {
  type Consumer,
  type Disposition,
  MessageEntity,
  type ReceiveMode,
  type SettleResult,
  type StoredMessage,
} from './message-entity.js';
import { type RemoteOutcome, settleSent, unusedCredit } from './rhea-internals.js';

/**
 * A server-side sending link serving one SDK receiver: hands out messages against the
 * receiver's credit, answers drain, and turns dispositions into entity settlements.
 */
export class DeliveryLink implements Consumer {
  readonly receiveMode: ReceiveMode;
  readonly isSessionReceiver: boolean;
  #sessionId: string | undefined;
  readonly #link: Sender;
  readonly #entity: MessageEntity;
  /** delivery -> lock token id; kept after lock expiry so a late settle gets lock-lost. */
  readonly #tokens = new WeakMap<Delivery, string>();
  #closed = false;

  constructor(link: Sender, entity: MessageEntity, receiveMode: ReceiveMode, isSessionReceiver: boolean) {
    this.#link = link;
    this.#entity = entity;
    this.receiveMode = receiveMode;
    this.isSessionReceiver = isSessionReceiver;
    link.on('sendable', () => entity.pump());
    link.on('sender_flow', () => entity.pump());
    link.on('sender_draining', () => {
      entity.pump();
      link.set_drained(true);
    });
    link.on('accepted', (ctx: { delivery: Delivery }) => this.#onOutcome(ctx.delivery, 'accepted'));
    link.on('rejected', (ctx: { delivery: Delivery }) => this.#onOutcome(ctx.delivery, 'rejected'));
    link.on('modified', (ctx: { delivery: Delivery }) => this.#onOutcome(ctx.delivery, 'modified'));
    link.on('released', (ctx: { delivery: Delivery }) => this.#onOutcome(ctx.delivery, 'released'));
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  /** Binds the session this receiver locked (accept-session / accept-next-session). */
  bindSession(sessionId: string): void {
    this.#sessionId = sessionId;
  }

  start(): void {
    this.#entity.addConsumer(this);
  }

  /** Called when the link, its session or its connection goes away. */
  stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#entity.removeConsumer(this);
  }

  availableCredit(): number {
    if (this.#closed || !this.#link.is_open()) return 0;
    return unusedCredit(this.#link);
  }

  deliver(entry: StoredMessage, lock: LockToken | undefined): void {
    const tag = (lock ?? newLockToken()).deliveryTag;
    const delivery = this.#link.send(MessageEntity.toWireMessage(entry), tag);
    if (lock !== undefined) this.#tokens.set(delivery, lock.id);
  }

  onSessionLockLost(): void {
    if (this.#closed) return;
    this.stop();
    this.#link.close(sessionLockLost(this.sessionId));
  }

  #onOutcome(delivery: Delivery, kind: 'accepted' | 'rejected' | 'modified' | 'released'): void {
    if (delivery.settled) return;
    const token = this.#tokens.get(delivery);
    if (token === undefined) {
      // pre-settled (receiveAndDelete) or unknown: just settle with the same outcome
      settleSent(delivery, kind);
      return;
    }
    const outcome = (delivery.remote_state ?? {}) as RemoteOutcome;
    const disposition = toDisposition(kind, outcome);
    const result: SettleResult = this.#entity.settle(token, disposition, this);
    if (result === 'lockLost') {
      settleSent(delivery, 'rejected', { error: messageLockLost() });
    } else if (result === 'sessionLockLost') {
      settleSent(delivery, 'rejected', { error: sessionLockLost(this.sessionId) });
    } else if (kind === 'modified') {
      settleSent(delivery, 'modified', {
        delivery_failed: outcome.delivery_failed,
        undeliverable_here: outcome.undeliverable_here,
      });
    } else {
      settleSent(delivery, kind);
    }
  }
}

function toDisposition(kind: 'accepted' | 'rejected' | 'modified' | 'released', outcome: RemoteOutcome): Disposition {
  switch (kind) {
    case 'accepted':
      return { kind: 'complete' };
    case 'released':
      return { kind: 'abandon' };
    case 'modified': {
      const props = outcome.message_annotations ?? undefined;
      return outcome.undeliverable_here === true
        ? { kind: 'defer', propertiesToModify: props }
        : { kind: 'abandon', propertiesToModify: props };
    }
    case 'rejected': {
      const info: Record<string, unknown> = { ...(outcome.error?.info ?? {}) };
      const reason = info.DeadLetterReason;
      const description = info.DeadLetterErrorDescription;
      delete info.DeadLetterReason;
      delete info.DeadLetterErrorDescription;
      return {
        kind: 'deadLetter',
        reason: typeof reason === 'string' ? reason : undefined,
        description: typeof description === 'string' ? description : undefined,
        propertiesToModify: info,
      };
    }
  }
}
