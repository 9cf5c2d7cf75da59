import type { MessageProperties, Options } from 'amqplib';

/** Headers the broker adds; never copied onto a re-published message. */
const BROKER_HEADERS = new Set([
  'x-death',
  'x-delivery-count',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
]);

/**
 * AMQP header table → string headers. Strings pass unchanged, numbers and booleans are printed,
 * byte arrays are read as UTF-8; nested tables and arrays (the broker's `x-death`) are left out.
 */
export function toStringHeaders(raw: Record<string, unknown> | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!raw) return headers;
  for (const name in raw) {
    const value = raw[name];
    if (typeof value === 'string') headers[name] = value;
    else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
      headers[name] = String(value);
    else if (Buffer.isBuffer(value)) headers[name] = value.toString('utf8');
  }
  return headers;
}

/** String headers of a delivery without the broker's own (for a copy the broker will stamp anew). */
export function withoutBrokerHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const copy: Record<string, string> = {};
  for (const name in headers) {
    if (!BROKER_HEADERS.has(name)) copy[name] = headers[name] as string;
  }
  return copy;
}

/** Publish options of a copy: the original's message properties, persistent, with new headers. */
export function copyProperties(properties: MessageProperties, headers: Record<string, string>): Options.Publish {
  const options: Options.Publish = { persistent: true, headers };
  if (properties.messageId !== undefined) options.messageId = properties.messageId;
  if (properties.contentType !== undefined) options.contentType = properties.contentType;
  if (properties.contentEncoding !== undefined) options.contentEncoding = properties.contentEncoding;
  if (properties.type !== undefined) options.type = properties.type;
  if (properties.correlationId !== undefined) options.correlationId = properties.correlationId;
  if (properties.timestamp !== undefined) options.timestamp = properties.timestamp;
  if (properties.appId !== undefined) options.appId = properties.appId;
  if (properties.priority !== undefined) options.priority = properties.priority;
  return options;
}
