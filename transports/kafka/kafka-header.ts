import type { IHeaders } from 'kafkajs';

/** Headers the Kafka transport adds; stable wire format. */
export const KafkaHeader = {
  messageId: 'sluice-message-id',
  contentType: 'content-type',
  /** On a retry-topic copy: epoch milliseconds before which it must not be delivered. */
  dueAt: 'sluice-kafka-due-at',
  /** On retry and dead-letter copies: `<topic>:<partition>:<offset>` of the record copied. */
  source: 'sluice-kafka-source',
} as const;

/** Kafka record headers as strings (the first value of a repeated header; bytes read as UTF-8). */
export function headersFromRecord(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const name of Object.keys(headers)) {
    let value = headers[name];
    if (Array.isArray(value)) value = value[0];
    if (value === undefined) continue;
    out[name] = typeof value === 'string' ? value : value.toString('utf8');
  }
  return out;
}
