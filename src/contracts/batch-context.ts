import type { Logger } from 'pino';
import type { Envelope } from '../envelope/envelope.js';

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
