import type { Logger } from 'pino';
import type { Envelope, EnvelopeOptions } from '../envelope/envelope.js';
import type { MessageContract } from './define-message.js';

/** Options of a publish or send made from inside a handler. */
export type OutgoingOptions = Omit<EnvelopeOptions, 'causationId'>;

/**
 * What a handler gets besides the message. Valid only while the handler runs.
 * `TTx` is the inbox transaction handle (a `pg` client, a SQLite database), or `undefined` when the
 * endpoint has no inbox.
 */
export interface MessageContext<T, TTx = undefined> {
  readonly envelope: Envelope<T>;
  readonly messageId: string;
  readonly messageType: string;
  readonly key: string | undefined;
  readonly endpoint: string;
  /** 1 on the first delivery of this message by the broker. */
  readonly deliveryCount: number;
  /** 1-based attempt across in-process retries and redeliveries (kept in a header). */
  readonly attempt: number;
  /** A child logger carrying endpoint, message id, type and attempt. */
  readonly log: Logger;
  /** Aborts when the endpoint stops waiting for this handler (shutdown past its timeout). */
  readonly signal: AbortSignal;
  /** The inbox transaction: write your effect through it so both commit together. */
  readonly tx: TTx;
  /**
   * Publishes a follow-up event. Its id is derived from this message's id, the endpoint and the
   * call's position, so a redelivered message republishes the same ids and consumers deduplicate.
   */
  publish<C extends MessageContract>(
    contract: C,
    data: C extends MessageContract<string, unknown, infer I> ? I : never,
    options?: OutgoingOptions,
  ): Promise<void>;
  /** Sends a command to one endpoint (same id rule as `publish`). */
  send<C extends MessageContract>(
    endpoint: string,
    contract: C,
    data: C extends MessageContract<string, unknown, infer I> ? I : never,
    options?: OutgoingOptions,
  ): Promise<void>;
  /** Dead-letters the message now, without retries, with this description. */
  deadLetter(description: string): never;
  /** Asks for redelivery after `delayMs` (counts as an attempt). */
  retryLater(delayMs: number, why?: string): never;
}

/** A typed handler; its message type must match the contract it is registered for. */
export type Handler<T, TTx = undefined> = (message: T, ctx: MessageContext<T, TTx>) => void | Promise<void>;
