import type { MessageProperties, Options } from 'amqplib';

/** Headers the broker adds; never copied onto a re-published message. */
export const BROKER_HEADERS: readonly string[] = [
  'x-death',
  'x-delivery-count',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
];

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
