import type { KafkaMessage } from 'kafkajs';
import { stringHeaders } from '../../src/transport-core/index.js';
import type { KafkaClient } from './kafka-client.js';
import { KafkaHeader, parseRecordPosition } from './kafka-header.js';
import { type RangeRecord, readTopicRange } from './read-topic-range.js';

/** A reference to find in its source topic. */
interface Wanted {
  readonly record: RangeRecord;
  readonly messageId: string | undefined;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/** References at most this many offsets apart in a source partition are read in one pass. */
const SOURCE_WINDOW_GAP = 1_000;

/**
 * The bodies of reference dead letters (`sluice-kafka-body-omitted`), read from their source
 * records: a Buffer per reference, null when the source record is no longer there (retention,
 * a deleted topic) or is not the same message any more (a recreated topic).
 */
export async function referencedBodies(
  client: Pick<KafkaClient, 'kafka' | 'admin' | 'config'>,
  records: RangeRecord[],
): Promise<Map<RangeRecord, Buffer | null>> {
  const bodies = new Map<RangeRecord, Buffer | null>();
  const wanted = new Map<string, Wanted[]>();
  for (const r of records) {
    const headers = stringHeaders(r.message.headers, true);
    if (!(KafkaHeader.bodyOmitted in headers)) continue;
    bodies.set(r, null);
    const source = parseRecordPosition(headers[KafkaHeader.source]);
    if (!source) continue;
    const list = wanted.get(source.topic) ?? [];
    list.push({ record: r, messageId: headers[KafkaHeader.messageId], ...source });
    wanted.set(source.topic, list);
  }
  for (const [topic, list] of wanted) {
    let watermarks: Map<number, { low: number; high: number }>;
    try {
      const offsets = await client.admin.fetchTopicOffsets(topic);
      watermarks = new Map(offsets.map((p) => [p.partition, { low: Number(p.low), high: Number(p.high) }]));
    } catch {
      continue; // The source topic is gone: its references stay dead letters.
    }
    // Only offsets still in the log, read in windows of nearby offsets: never a long stretch of
    // the source topic between two far-apart references.
    const present = list
      .filter(({ partition, offset }) => {
        const bounds = watermarks.get(partition);
        return bounds !== undefined && offset >= bounds.low && offset < bounds.high;
      })
      .sort((x, y) => x.partition - y.partition || x.offset - y.offset);
    const windows: { partition: number; from: number; to: number }[] = [];
    for (const { partition, offset } of present) {
      const last = windows[windows.length - 1];
      if (last && last.partition === partition && offset - last.to < SOURCE_WINDOW_GAP) last.to = offset + 1;
      else windows.push({ partition, from: offset, to: offset + 1 });
    }
    const found = new Map<string, KafkaMessage>();
    for (const w of windows) {
      const read = await readTopicRange(client, topic, { ranges: new Map([[w.partition, w]]) });
      for (const r of read) found.set(`${r.partition}:${r.message.offset}`, r.message);
    }
    for (const want of present) {
      const source = found.get(`${want.partition}:${want.offset}`);
      if (!source?.value) continue;
      const sourceId = stringHeaders(source.headers, true)[KafkaHeader.messageId];
      if (want.messageId !== undefined && sourceId !== undefined && sourceId !== want.messageId) continue;
      bodies.set(want.record, source.value);
    }
  }
  return bodies;
}
