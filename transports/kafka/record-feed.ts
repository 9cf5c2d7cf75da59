import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { ConsumerGate } from '../../src/transport-core/index.js';
import { Fifo, stringHeaders } from '../../src/transport-core/index.js';
import type { KafkaConsumerDeps } from './kafka-consumer.js';
import type { DeliveryOwner } from './kafka-delivery.js';
import { handOut } from './held-records.js';
import { KafkaHeader } from './kafka-header.js';
import { type Chunk, type PartitionState, partitionKeyOf as key } from './partition-state.js';
import { recordDelivery } from './record-delivery.js';

/**
 * `eachBatch` returns (so kafkajs fetches the next batch) while the buffer holds at most this many
 * fetches' worth of bytes (`maxBytesPerPartition` each) or at most `prefetch` records: the endpoint
 * has work while the next fetch and its delivery mark are on the way. Memory stays bounded by this
 * plus the fetch response being taken in (one per broker). Half a fetch (2 MiB at the default 4 MiB): a buffered record is read
 * again when it is handed out, and the longer it waited the colder it is; 2 fetches cost 6–15 %
 * more CPU per message, and a quarter was no better (docs/benchmarks.md, issue 18).
 */
const BUFFER_FETCHES = 0.5;

/** The consumer's clock, logger, config, topics, naming and callback, its gate, and its partitions. */
export interface RecordFeedDeps
  extends Pick<KafkaConsumerDeps, 'clock' | 'logger' | 'config' | 'topics' | 'naming' | 'callback'> {
  readonly owner: DeliveryOwner;
  readonly gate: ConsumerGate;
  /** The partition's state, made (with the group's delivery mark) on its first batch. */
  readonly partitionState: (topic: string, partition: number, firstOffset: number) => Promise<PartitionState>;
  readonly partition: (k: string) => PartitionState | undefined;
  /**
   * Commits at once (after any commit under way): writes a batch's delivery mark ahead of handing
   * its records out. Resolves when that commit has returned or failed (a failure is logged there).
   */
  readonly flushMarks: () => Promise<void>;
  /** Pauses and resumes fetching per partition (a deferred retry partition is paused). */
  readonly applyPauses: () => void;
  /** Closing, closed or stopped: nothing more is handed out. */
  readonly closing: () => boolean;
}

/**
 * Fetched records on their way to the endpoint. Fetched batches go into a buffer (a queue of
 * chunks, in fetch order) and `eachBatch` returns while the buffer is short, so kafkajs fetches the
 * next batch while the endpoint works through this one; settlements refill the prefetch from the
 * buffer (one macrotask per burst). Records of the retry topic wait, their partition paused and
 * their chunks parked, until their due time (Kafka's delay).
 */
export class RecordFeed {
  readonly #queue = new Fifo<Chunk>();
  /** Records and value bytes in `#queue` (parked ones not counted). */
  #buffered = 0;
  #bufferedBytes = 0;
  readonly #bufferBytes: number;
  #pumpScheduled = false;
  #wake: (() => void)[] = [];
  readonly #deferred = new Map<string, () => void>();

  constructor(private readonly deps: RecordFeedDeps) {
    this.#bufferBytes = BUFFER_FETCHES * deps.config.maxBytesPerPartition;
  }

  isDeferred(topic: string, partition: number): boolean {
    return this.#deferred.has(key(topic, partition));
  }

  /** Lets go of deferrals of partitions no longer assigned. */
  keepOnly(assigned: ReadonlySet<string>): void {
    for (const k of [...this.#deferred.keys()]) if (!assigned.has(k)) this.#undefer(k);
  }

  /** Cancels held redeliveries and deferrals (the consumer lets go of every partition). */
  dropAll(): void {
    for (const k of [...this.#deferred.keys()]) this.#undefer(k);
  }

  /** Drops a revoked partition's buffered records (never handed out: the next owner reads them). */
  dropPartition(state: PartitionState): void {
    state.parked = [];
    for (const chunk of this.#queue.removeWhere((c) => c.state === state)) this.#count(chunk, -1);
    this.signal();
    this.schedulePump();
  }

  /**
   * Takes a fetched batch into the buffer and starts the commit of the delivery mark that covers
   * it (its records go out once that has returned), then returns at once while the buffer is short
   * (so kafkajs fetches the next batch meanwhile), else waits, heartbeating, until it is. The
   * batch's records are resolved for kafkajs's fetch position only; commits come from the offset
   * trackers.
   */
  async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const messages = batch.messages;
    const { closing } = this.deps;
    if (messages.length === 0 || closing() || !payload.isRunning() || payload.isStale()) return;
    const first = messages[0] as KafkaMessage;
    const last = messages[messages.length - 1] as KafkaMessage;
    const state = await this.deps.partitionState(batch.topic, batch.partition, Number(first.offset));
    if (state.revoked || closing()) return;
    const lastOffset = Number(last.offset);
    // Records fetched again (a rebalance kept the partition here) are already buffered or handed out.
    let start = 0;
    if (Number(first.offset) < state.fetchedNext) {
      while (start < messages.length && Number((messages[start] as KafkaMessage).offset) < state.fetchedNext) start++;
    }
    payload.resolveOffset(last.offset);
    if (start === messages.length) return;
    const from = Math.max(Number((messages[start] as KafkaMessage).offset), (state.mark?.through ?? -1) + 1);
    let bytes = 0;
    for (let i = start; i < messages.length; i++) bytes += (messages[i] as KafkaMessage).value?.length ?? 0;
    const chunk: Chunk = { state, messages, pos: start, bytes };
    state.fetchedNext = lastOffset + 1;
    if (state.parked.length > 0) state.parked.push(chunk);
    else {
      this.#queue.push(chunk);
      this.#count(chunk, 1);
    }
    if (state.mark === undefined || state.mark.through < lastOffset) {
      // Write-ahead: the group learns these records were handed out before any of them is. The pump
      // hands them out once a commit that carries the mark has returned (or failed: best effort,
      // as always); kafkajs is not held up meanwhile, so the next batches and the next fetch overlap
      // the commit, and the marks of a fetch's batches share commits rather than waiting for one
      // each in turn. (Always true past the re-fetch skip above: the mark ends at `fetchedNext - 1`.)
      const { prior } = state;
      const covers = prior !== undefined && lastOffset <= prior.through && from >= state.priorFrom;
      state.mark = { through: lastOffset, count: covers ? prior.count + 1 : 1 };
      this.deps
        .flushMarks()
        .then(() => this.#marked(state, lastOffset))
        .catch((error: unknown) => {
          // A bug in the pump, not a failed commit (flushMarks logs and resolves): the records stay
          // buffered, and the next pump (a settlement, the next batch) tries again.
          this.deps.logger.error({ err: error }, 'handing out a fetched batch failed');
        });
    }
    this.#pump();
    if (!(await this.#waitForRoom(payload))) return;
    await payload.heartbeat();
  }

  /**
   * A commit carrying the partition's mark through `through` has returned (or failed, logged by
   * `flushMarks`): those records may go out.
   */
  #marked(state: PartitionState, through: number): void {
    if (state.revoked || state.markedThrough >= through) return;
    state.markedThrough = through;
    this.#pump();
  }

  /**
   * Waits until the buffer is down to its limit (waking when the pump drains it, not per message),
   * heartbeating; false when the batch should stop instead.
   */
  async #waitForRoom(payload: EachBatchPayload): Promise<boolean> {
    while (this.#full) {
      if (this.deps.closing() || this.deps.gate.paused || !payload.isRunning() || payload.isStale()) return false;
      await new Promise<void>((resolve) => {
        const cancel = this.deps.clock.setTimer(resolve, this.deps.config.heartbeatIntervalMs);
        this.#wake.push(() => {
          cancel();
          resolve();
        });
      });
      // Throws when the group rebalances: kafkajs then rejoins, and we keep our trackers and buffer.
      await payload.heartbeat();
    }
    return true;
  }

  /**
   * A macrotask, not a microtask: deliveries that settle in microtasks would otherwise refill the
   * prefetch forever without yielding, and the next fetch's response (I/O) would wait until the
   * whole buffer is worked off, leaving the endpoint idle during every fetch.
   */
  schedulePump(): void {
    if (this.#pumpScheduled || this.#buffered === 0) return;
    this.#pumpScheduled = true;
    setImmediate(this.#pump);
  }

  /** Hands buffered records out, in fetch order, while the prefetch has room. */
  readonly #pump = (): void => {
    this.#pumpScheduled = false;
    const queue = this.#queue;
    const { gate, callback, clock } = this.deps;
    while (gate.canTake()) {
      const chunk = queue.peek();
      if (chunk === undefined) break;
      const { state, messages } = chunk;
      const message = messages[chunk.pos] as KafkaMessage;
      const offset = Number(message.offset);
      // A chunk whose mark has not returned yet waits, and what was fetched after it waits behind it
      // (commits return in order, so the wait is short).
      if (offset > state.markedThrough) break;
      if (state.isRetry && (state.parked.length > 0 || this.isDeferred(state.topic, state.partition))) {
        this.#park(chunk);
        continue;
      }
      const raw = stringHeaders(message.headers, true);
      if (state.isRetry) {
        const dueAt = Number(raw[KafkaHeader.dueAt] ?? 0);
        if (dueAt > clock.now()) {
          this.#park(chunk);
          this.#defer(state.topic, state.partition, dueAt);
          continue;
        }
      }
      if (++chunk.pos === messages.length) queue.shift();
      const size = message.value?.length ?? 0;
      chunk.bytes -= size;
      this.#bufferedBytes -= size;
      this.#buffered--;
      state.tracker.track(offset);
      gate.handedOut();
      const { owner, topics, naming, logger } = this.deps;
      handOut(recordDelivery(owner, state, message, offset, raw, topics.address, naming), callback, logger);
    }
    if (this.#wake.length > 0 && !this.#full) this.signal();
  };

  get #full(): boolean {
    return this.#buffered > this.deps.gate.prefetch && this.#bufferedBytes > this.#bufferBytes;
  }

  /** Adds a chunk's remaining records to the buffer counts (`sign` 1) or removes them (-1). */
  #count(chunk: Chunk, sign: 1 | -1): void {
    this.#buffered += sign * (chunk.messages.length - chunk.pos);
    this.#bufferedBytes += sign * chunk.bytes;
  }

  /** Moves the queue's head chunk to its partition's parked list (a retry partition not yet due). */
  #park(chunk: Chunk): void {
    this.#queue.shift();
    this.#count(chunk, -1);
    chunk.state.parked.push(chunk);
  }

  #defer(topic: string, partition: number, dueAt: number): void {
    const k = key(topic, partition);
    if (this.#deferred.has(k)) return;
    const cancel = this.deps.clock.setTimer(
      () => {
        this.#deferred.delete(k);
        this.#unpark(k);
        this.deps.applyPauses();
      },
      Math.max(1, dueAt - this.deps.clock.now() + 1),
    );
    this.#deferred.set(k, cancel);
    this.deps.applyPauses();
  }

  #undefer(k: string): void {
    this.#deferred.get(k)?.();
    this.#deferred.delete(k);
  }

  /** Puts a retry partition's parked chunks back at the front of the queue, in order. */
  #unpark(k: string): void {
    const state = this.deps.partition(k);
    if (!state || state.parked.length === 0) return;
    const parked = state.parked;
    state.parked = [];
    for (let i = parked.length - 1; i >= 0; i--) {
      const chunk = parked[i] as Chunk;
      this.#queue.unshift(chunk);
      this.#count(chunk, 1);
    }
    this.schedulePump();
  }

  /** Wakes a batch waiting for room. */
  signal(): void {
    const waiting = this.#wake;
    if (waiting.length === 0) return;
    this.#wake = [];
    for (const wake of waiting) wake();
  }
}
