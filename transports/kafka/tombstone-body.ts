import { createHash } from 'node:crypto';

/** Where a tombstone record came from. */
export interface TombstoneSource {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | undefined;
  /** The record timestamp, epoch milliseconds. */
  readonly timestampMs: number;
  readonly type: string;
}

/**
 * The CloudEvents body Sluice decodes for a Kafka tombstone (a record whose value is null): type from
 * the record's `sluice-message-type` header or the topic mapping, `subject` = the record key,
 * `time` = the record timestamp in RFC 3339 UTC, `id` derived from topic/partition/offset (stable
 * across redeliveries, so the inbox deduplicates it), `tombstone: true`, no data.
 */
export function tombstoneBody(source: TombstoneSource): Buffer {
  let id = `kafka:${source.topic}:${source.partition}:${source.offset}`;
  if (id.length > 256) id = `kafka:sha256:${createHash('sha256').update(id).digest('hex')}`;
  const event: Record<string, unknown> = {
    specversion: '1.0',
    id,
    source: `/kafka/${source.topic}`,
    type: source.type,
    time: new Date(Number.isFinite(source.timestampMs) ? source.timestampMs : 0).toISOString(),
    tombstone: true,
  };
  if (source.key !== undefined && source.key.length > 0) event.subject = source.key;
  return Buffer.from(JSON.stringify(event));
}

/** The type a tombstone gets when neither a header nor the configuration names one. */
export const UNKNOWN_TOMBSTONE_TYPE = 'sluice.kafka.tombstone';
