import { randomUUID } from 'node:crypto';
import type { ServiceBusMessage, ServiceBusReceivedMessage } from '@azure/service-bus';
import { InvalidOutgoingMessageError, type OutgoingMessage } from '../../src/transport-core/index.js';

/** Service Bus limits a message id and a session id to 128 characters. */
export const MAX_ID_LENGTH = 128;

/** Application properties the service writes on a dead-lettered message. */
export const DeadLetterProperty = {
  reason: 'DeadLetterReason',
  description: 'DeadLetterErrorDescription',
} as const;

/**
 * The Service Bus message for an outgoing Sluice message: body as one data section (bytes kept),
 * headers as application properties, the message type as `subject`. Throws
 * {@link InvalidOutgoingMessageError} (not retryable: nothing is sent) when the message id or the
 * session id (the key, with sessions) is longer than Service Bus allows.
 */
export function toServiceBusMessage(message: OutgoingMessage, sessionId: string | undefined): ServiceBusMessage {
  assertFits('message id', message.messageId);
  if (sessionId !== undefined) assertFits('session id (the message key)', sessionId);
  const sbMessage: ServiceBusMessage = {
    body: message.body,
    messageId: message.messageId,
    contentType: message.contentType,
    subject: message.messageType,
    applicationProperties: { ...message.headers },
  };
  if (sessionId !== undefined) sbMessage.sessionId = sessionId;
  return sbMessage;
}

function assertFits(what: string, value: string): void {
  if (value.length <= MAX_ID_LENGTH) return;
  throw new InvalidOutgoingMessageError(
    `Service Bus limits a ${what} to ${MAX_ID_LENGTH} characters; "${value.slice(0, 40)}…" has ${value.length}: nothing was sent`,
  );
}

/** Carries the original message id on copies, which get a broker message id of their own. */
export const ORIGINAL_MESSAGE_ID = 'sluice-message-id';

/** The message id as the producer sent it, also on a copy (see {@link copyOf}). */
export function messageIdOf(received: ServiceBusReceivedMessage): string {
  const original = (received.applicationProperties as Record<string, unknown> | undefined)?.[ORIGINAL_MESSAGE_ID];
  return typeof original === 'string' ? original : String(received.messageId);
}

/**
 * A copy of a received message with new application properties (scheduled retry, redrive). The
 * copy gets a new broker message id, so that a queue with duplicate detection on cannot drop it as
 * a duplicate of the original (which is then completed: the message would be lost); the original id
 * travels in `sluice-message-id`. Sluice itself deduplicates on the envelope id in the body.
 */
export function copyOf(
  received: ServiceBusReceivedMessage,
  headers: Readonly<Record<string, string>>,
): ServiceBusMessage {
  const copy: ServiceBusMessage = {
    body: bodyOf(received),
    messageId: randomUUID(),
    applicationProperties: { ...headers, [ORIGINAL_MESSAGE_ID]: messageIdOf(received) },
  };
  if (received.contentType !== undefined) copy.contentType = received.contentType;
  if (received.subject !== undefined) copy.subject = received.subject;
  if (received.correlationId !== undefined) copy.correlationId = received.correlationId as string;
  if (received.sessionId !== undefined) copy.sessionId = received.sessionId;
  return copy;
}

/** The body bytes as received (a data section); other AMQP body kinds are encoded as UTF-8 / JSON. */
export function bodyOf(received: ServiceBusReceivedMessage): Buffer {
  const body: unknown = received.body;
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body === undefined || body === null) return Buffer.alloc(0);
  return Buffer.from(JSON.stringify(body), 'utf8');
}
