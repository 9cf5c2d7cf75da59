import type { Logger } from 'pino';
import type { Envelope, EnvelopeOptions } from '../envelope/envelope.js';
import type { MessageContract } from './define-message.js';

/** What a batch handler gets besides the messages. Valid only while the handler runs. */
export interface BatchContext<T, TTx = undefined> {
  /** The envelopes, in the same order as the messages. */
  readonly envelopes: readonly Envelope<T>[];
  readonly endpoint: string;
  readonly log: Logger;
  /** Aborts when the endpoint stops waiting for this handler. */
  readonly signal: AbortSignal;
  /** The one inbox transaction of the whole batch: write the batch's effect through it. */
  readonly tx: TTx;
  /**
   * Publishes an event. With an inbox (and the outbox on), it is written to the outbox in `tx` and
   * dispatched after the batch commits; nothing of a batch that fails goes out. Its id is derived
   * from the batch's message ids, the endpoint and the call's position, unless `options.id` is
   * given; name the message it follows from with `options.causationId`.
   */
  publish<C extends MessageContract>(
    contract: C,
    data: C extends MessageContract<string, unknown, infer I> ? I : never,
    options?: EnvelopeOptions,
  ): Promise<void>;
  /** Sends a command to one endpoint (as `publish`). */
  send<C extends MessageContract>(
    endpoint: string,
    contract: C,
    data: C extends MessageContract<string, unknown, infer I> ? I : never,
    options?: EnvelopeOptions,
  ): Promise<void>;
}

/**
 * Handles up to `maxMessages` messages of one type at once (MassTransit's `Batch<T>`), inside one
 * inbox transaction, so its effect can be one multi-row statement. Messages already processed are
 * left out. A throw fails every message of the batch (each then follows its retry policy).
 */
export type BatchHandler<T, TTx = undefined> = (
  messages: readonly T[],
  ctx: BatchContext<T, TTx>,
) => void | Promise<void>;

export interface BatchOptions {
  /** Most messages per call. Default 100. */
  readonly maxMessages?: number;
  /** How long the first message waits for more before the batch runs. Default 10 ms. */
  readonly maxWaitMs?: number;
}
