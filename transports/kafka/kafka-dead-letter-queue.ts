import type { Message } from 'kafkajs';
import type {
  DeadLetteredMessage,
  DeadLetterQueue,
  DeadLetterScanOptions,
  PurgeResult,
  PurgeSelection,
  RedriveResult,
  RedriveSelection,
} from '../../src/transport-core/index.js';
import {
  choose,
  deadLettered,
  faultFromHeaders,
  redriveHeaders,
  scanPages,
  stringHeaders,
} from '../../src/transport-core/index.js';
import type { KafkaClient } from './kafka-client.js';
import { KafkaHeader } from './kafka-header.js';
import { referencedBodies } from './referenced-bodies.js';
import { type RangeRecord, readTopicRange } from './read-topic-range.js';
import type { EndpointTopics } from './topic-naming.js';

export interface KafkaDeadLetterQueueDeps extends KafkaClient {
  readonly topics: EndpointTopics;
  /** Serialises redrives of one topic within the process. */
  readonly lock: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
}

/**
 * The dead-letter topic of one endpoint (`<topic>.<group>.dlq`). Kafka cannot delete a record, so the
 * queue is the part of the topic after the committed offset of the reader group `<group>.dlq-reader`
 * (kept with the admin API, never by a live member). `count` is exact and cheap (watermarks and
 * committed offsets). `peek` reads without moving anything. `redrive` writes copies to the endpoint's
 * input topic with acks=all, then moves the reader offset; a dead letter not chosen but lying before
 * a chosen one (`{ ids }`) is appended again to the dead-letter topic first (new id, same content).
 * A crash in between duplicates, never loses. Concurrent redrives from several processes can
 * duplicate; within one process they run one at a time.
 */
export class KafkaDeadLetterQueue implements DeadLetterQueue {
  constructor(private readonly deps: KafkaDeadLetterQueueDeps) {}

  get #topic(): string {
    return this.deps.topics.deadLetter;
  }

  get #readerGroup(): string {
    return `${this.deps.topics.group}.dlq-reader`;
  }

  /** Per partition: where the queue starts (reader offset or log start) and the high watermark. */
  async #ranges(): Promise<Map<number, { from: number; to: number }>> {
    const [watermarks, committed] = await Promise.all([
      this.deps.admin.fetchTopicOffsets(this.#topic),
      this.deps.admin.fetchOffsets({ groupId: this.#readerGroup, topics: [this.#topic] }),
    ]);
    const reader = new Map<number, number>();
    for (const p of committed[0]?.partitions ?? []) reader.set(p.partition, Number(p.offset));
    const ranges = new Map<number, { from: number; to: number }>();
    for (const w of watermarks) {
      const from = Math.max(Number(w.low), reader.get(w.partition) ?? -1);
      ranges.set(w.partition, { from, to: Number(w.high) });
    }
    return ranges;
  }

  async count(): Promise<number> {
    let n = 0;
    for (const r of (await this.#ranges()).values()) n += Math.max(0, r.to - r.from);
    return n;
  }

  async peek(limit = 100): Promise<DeadLetteredMessage[]> {
    const ranges = await this.#ranges();
    for (const r of ranges.values()) r.to = Math.min(r.to, r.from + limit);
    return oldestFirst(await this.#read(ranges))
      .slice(0, limit)
      .map((r) => this.#toDeadLetter(r));
  }

  /**
   * Reads the queue in windows of {@link SCAN_WINDOW} records per partition (each read costs a
   * group join, so not one per page), oldest first within a window.
   */
  async *scan(options: DeadLetterScanOptions = {}): AsyncGenerator<readonly DeadLetteredMessage[]> {
    let left = options.max ?? Number.POSITIVE_INFINITY;
    const ranges = await this.#ranges();
    while (left > 0) {
      const window = new Map<number, { from: number; to: number }>();
      for (const [p, r] of ranges)
        if (r.to > r.from) window.set(p, { from: r.from, to: Math.min(r.to, r.from + SCAN_WINDOW) });
      if (window.size === 0) return;
      const read = oldestFirst(await this.#read(window)).slice(0, left);
      for (const [p, w] of window) (ranges.get(p) as { from: number }).from = w.to;
      const found = read.map((r) => this.#toDeadLetter(r));
      yield* scanPages(found, options);
      left -= read.length;
    }
  }

  redrive(selection: RedriveSelection, reason: string): Promise<RedriveResult> {
    return this.#take(selection, { moved: 0, ids: [] }, (read, commit) => this.#move(read, selection, reason, commit));
  }

  /**
   * Removes by moving the reader offset past the chosen records; a record not chosen but lying
   * before a chosen one is appended again first, as redrive does.
   */
  purge(selection: PurgeSelection): Promise<PurgeResult> {
    return this.#take(selection, { removed: 0, ids: [] }, async (read, commit) => {
      const chosen = this.#choose(read, selection);
      await this.#keepAndCommit(read, chosen, commit);
      return { removed: chosen.length, ids: chosen.map((r) => this.#toDeadLetter(r).messageId) };
    });
  }

  /**
   * Within the topic's lock, reads the queue (or its oldest `limit` per partition) as the reader
   * group and hands it to `act` while still the group's member; `none` when there was nothing to read.
   */
  #take<T>(
    selection: RedriveSelection | PurgeSelection,
    none: T,
    act: (read: RangeRecord[], commit: (offsets: Map<number, number>) => Promise<void>) => Promise<T>,
  ): Promise<T> {
    return this.deps.lock(this.#topic, async () => {
      let result = none;
      const ranges = await this.#ranges();
      if ('limit' in selection) for (const r of ranges.values()) r.to = Math.min(r.to, r.from + selection.limit);
      await readTopicRange(this.deps, this.#topic, {
        ranges,
        groupId: this.#readerGroup,
        whileMember: async (read, commit) => {
          result = await act(oldestFirst(read), commit);
        },
      });
      return result;
    });
  }

  #choose(records: RangeRecord[], selection: RedriveSelection | PurgeSelection): RangeRecord[] {
    return choose(records, selection, (r) => this.#toDeadLetter(r)).chosen;
  }

  /**
   * Appends again the records not chosen that lie before a chosen one in their partition (and
   * `alsoKeep`), then commits the reader offset past the last of them in each partition.
   */
  async #keepAndCommit(
    records: RangeRecord[],
    chosen: RangeRecord[],
    commit: (offsets: Map<number, number>) => Promise<void>,
    alsoKeep: RangeRecord[] = [],
  ): Promise<void> {
    if (chosen.length === 0 && alsoKeep.length === 0) return;
    const chosenSet = new Set(chosen);
    const keepSet = new Set(alsoKeep);
    const lastByPartition = new Map<number, number>();
    for (const r of [...chosen, ...alsoKeep]) {
      lastByPartition.set(r.partition, Math.max(lastByPartition.get(r.partition) ?? -1, Number(r.message.offset)));
    }
    const keptBefore = oldestFirst(
      records.filter(
        (r) =>
          !chosenSet.has(r) && (keepSet.has(r) || Number(r.message.offset) < (lastByPartition.get(r.partition) ?? -1)),
      ),
    );
    if (keptBefore.length > 0) {
      await this.deps.producer.send({
        topic: this.#topic,
        acks: -1,
        // With its own timestamp: the queue reads oldest first by timestamp, so a dead letter
        // appended again keeps its place before the ones that came after it.
        messages: keptBefore.map((r) => ({
          key: r.message.key,
          value: r.message.value,
          headers: r.message.headers ?? {},
          timestamp: r.message.timestamp,
        })),
      });
    }
    await commit(new Map([...lastByPartition].map(([p, last]) => [p, last + 1])));
  }

  /** Copies the chosen dead letters to the input topic, then moves the reader offset past them. */
  async #move(
    records: RangeRecord[],
    selection: RedriveSelection,
    reason: string,
    commit: (offsets: Map<number, number>) => Promise<void>,
  ): Promise<RedriveResult> {
    let chosen = this.#choose(records, selection);
    if (chosen.length === 0) return { moved: 0, ids: [] };
    // A dead letter written as a reference (its copy did not fit) gets its body from the source
    // record. One whose source is gone (retention) stays, as if not chosen.
    const bodies = await referencedBodies(this.deps, chosen);
    const gone = chosen.filter((r) => bodies.get(r) === null);
    if (gone.length > 0) chosen = chosen.filter((r) => bodies.get(r) !== null);
    const now = new Date(this.deps.clock.now());
    // In order; a body read back from its source goes alone: it was too large for the dead-letter
    // topic, and two of them in one produce can exceed the input topic's limit for one batch.
    let batch: Message[] = [];
    for (const r of chosen) {
      const headers = redriveHeaders(stringHeaders(r.message.headers, true), reason, now, ['sluice-kafka-']);
      const referenced = bodies.get(r);
      batch.push({ key: r.message.key, value: referenced ?? r.message.value, headers });
      if (referenced) batch = await this.#produceToInput(batch);
    }
    await this.#produceToInput(batch);
    // A gone one is kept (appended again) when the offset moves past it.
    await this.#keepAndCommit(records, chosen, commit, gone);
    return { moved: chosen.length, ids: chosen.map((r) => this.#toDeadLetter(r).messageId) };
  }

  /** Produces `messages` (if any) to the endpoint's input topic with acks=all; returns a new empty batch. */
  async #produceToInput(messages: Message[]): Promise<Message[]> {
    if (messages.length > 0) await this.deps.producer.send({ topic: this.deps.topics.input, acks: -1, messages });
    return [];
  }

  #read(ranges: Map<number, { from: number; to: number }>): Promise<RangeRecord[]> {
    return readTopicRange(this.deps, this.#topic, { ranges });
  }

  #toDeadLetter(r: RangeRecord): DeadLetteredMessage {
    const headers = stringHeaders(r.message.headers, true);
    const deadLetterId = `${this.#topic}:${r.partition}:${r.message.offset}`;
    const fault = faultFromHeaders(headers);
    const messageId = fault?.messageId ?? headers[KafkaHeader.messageId] ?? deadLetterId;
    return deadLettered(deadLetterId, messageId, r.message.value ?? Buffer.alloc(0), headers, fault);
  }
}

/** Records per partition read by one group join while scanning. */
const SCAN_WINDOW = 1_000;

/** Oldest first across partitions (record timestamp), offset order within a partition. */
function oldestFirst(records: RangeRecord[]): RangeRecord[] {
  return [...records].sort(
    (a, b) =>
      Number(a.message.timestamp) - Number(b.message.timestamp) ||
      a.partition - b.partition ||
      Number(a.message.offset) - Number(b.message.offset),
  );
}
