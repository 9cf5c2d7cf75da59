import rhea from 'rhea';
import type { Message } from 'rhea';

/** A decoded AMQP message as rhea represents it (header fields flattened onto the object). */
export type AmqpMessage = Message;

/** Azure Service Bus batch message format (N data sections, each a complete encoded message). */
export const BATCH_MESSAGE_FORMAT = 0x80013700;

interface BodySection {
  typecode: number;
  content: Buffer | Buffer[];
  multiple?: boolean;
}

function isBodySection(value: unknown): value is BodySection {
  return typeof value === 'object' && value !== null && 'typecode' in value && 'content' in value;
}

/** Splits an incoming transfer into the messages it carries (one, or N for a batch). */
export function decodeIncoming(payload: Message | Buffer, format: number | undefined): AmqpMessage[] {
  if (!Buffer.isBuffer(payload)) return [payload];
  if (format !== BATCH_MESSAGE_FORMAT) {
    return [decodeMessage(payload)];
  }
  const outer = decodeMessage(payload);
  const body: unknown = outer.body;
  if (!isBodySection(body) || body.typecode !== 0x75) {
    throw new Error('Batch message body must consist of data sections.');
  }
  const parts = Array.isArray(body.content) ? body.content : [body.content];
  return parts.map((part) => decodeMessage(part));
}

export function encodeMessage(message: AmqpMessage): Buffer {
  return rhea.message.encode(message);
}

export function decodeMessage(buffer: Buffer): AmqpMessage {
  return rhea.message.decode(buffer) as unknown as AmqpMessage;
}

/** Returns a shallow copy with application properties merged (used by abandon/defer/dead-letter). */
export function withApplicationProperties(
  message: AmqpMessage,
  props: Record<string, unknown> | undefined,
): AmqpMessage {
  if (props === undefined || Object.keys(props).length === 0) return message;
  const existing: Record<string, unknown> = message.application_properties ?? {};
  return { ...message, application_properties: { ...existing, ...props } } as AmqpMessage;
}

export function messageAnnotation(message: AmqpMessage, key: string): unknown {
  const annotations: Record<string, unknown> | undefined = message.message_annotations;
  return annotations?.[key];
}
