import { InvalidOutgoingMessageError, type OutgoingMessage } from '../../src/transport-core/index.js';

/** AMQP 0-9-1 short strings (message id, type, exchange and queue names) hold at most 255 bytes. */
export const MAX_SHORT_STRING_BYTES = 255;

/**
 * Throws {@link InvalidOutgoingMessageError} (not retryable: nothing was sent) when AMQP 0-9-1
 * cannot carry the message: its id, its type (the `type` property and, for a publish, the exchange
 * name) or the queue it is sent to longer than 255 UTF-8 bytes. Checked before publishing, because
 * amqplib refuses such a frame only when writing it, with an error that says nothing of the limit.
 */
export function assertFitsAmqp(message: OutgoingMessage, queue?: string): void {
  const fields: [string, string][] = [
    ['message id', message.messageId],
    ['message type', message.messageType],
  ];
  if (queue !== undefined) fields.push(['queue name', queue]);
  for (const [what, value] of fields) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_SHORT_STRING_BYTES) {
      throw new InvalidOutgoingMessageError(
        `RabbitMQ limits a ${what} to ${MAX_SHORT_STRING_BYTES} UTF-8 bytes (an AMQP short string); ` +
          `"${value.slice(0, 40)}…" has ${bytes}: nothing was sent`,
      );
    }
  }
}
