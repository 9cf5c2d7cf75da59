import type { Admin, Consumer as KafkajsConsumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type {
  Clock,
  Consumer,
  ConsumerStatus,
  DeliveryCallback,
  FaultDetails,
  ReleaseOptions,
} from '../../src/transport/index.js';
import { deadLetterHeaders, Fifo, SluiceHeader, TransportError } from '../../src/transport/index.js';
import { type DeliveryMark, decodeDeliveryMark, encodeDeliveryMark } from './delivery-mark.js';
import type { KafkaTransportConfig } from './kafka-config.js';
import { type DeliveryOwner, KafkaDelivery, type PartitionLease } from './kafka-delivery.js';
import { headersFromRecord, isMessageTooLarge, KafkaHeader } from './kafka-header.js';
import { OffsetTracker } from './offset-tracker.js';
import { pauseAwareAssigner } from './pause-aware-assigner.js';
import type { EndpointTopics, TopicNaming } from './topic-naming.js';
import { tombstoneBody, UNKNOWN_TOMBSTONE_TYPE } from './tombstone-body.js';

export interface KafkaConsumerDeps {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: Producer;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly config: KafkaTransportConfig;
  readonly naming: TopicNaming;
  readonly topics: EndpointTopics;
  readonly callback: DeliveryCallback;
  readonly prefetch: number;
  /** Join paused (the pause-aware assignor then gives this member no partitions while others run). */
  readonly paused: boolean;
  readonly onStatus: ((status: ConsumerStatus) => void) | undefined;
  readonly onClosed: (consumer: KafkaConsumer) => void;
}

/** Per assigned partition: what was fetched, handed out, may be committed, was committed. */
interface PartitionState extends PartitionLease {
  readonly topic: string;
  readonly partition: number;
  readonly isRetry: boolean;
  readonly tracker: OffsetTracker;
  /** The mark read from the group's last commit when the partition was assigned. */
  readonly prior: DeliveryMark | undefined;
  readonly priorFrom: number;
  /** The mark this member writes with its commits. */
  mark: DeliveryMark | undefined;
  /** Records up to this offset may be handed out: a mark covering them was written. */
  markedThrough: number;
  /** One past the last offset taken into the buffer: records fetched again below it are skipped. */
  fetchedNext: number;
  /** Chunks of a retry partition waiting for a due time (in order; not in the shared queue). */
  parked: Chunk[];
  committedOffset: number | undefined;
  committedMeta: string | null;
  revoked: boolean;
}

/** Fetched records not handed out yet: `messages[pos..]` of one partition, `bytes` their values' size. */
interface Chunk {
  readonly state: PartitionState;
  readonly messages: KafkaMessage[];
  pos: number;
  bytes: number;
}

const key = (topic: string, partition: number) => `${partition}:${topic}`;

/**
 * `eachBatch` returns (so kafkajs fetches the next batch) while the buffer holds at most this many
 * fetches' worth of bytes (`maxBytesPerPartition` each) or at most `prefetch` records: the endpoint
 * has work while the next fetch and its delivery mark are on the way. Memory stays bounded by this
 * plus one fetch response.
 */
const BUFFER_FETCHES = 2;

/**
 * kafkajs emits STOP from inside its crash handling, before CRASH. A STOP nobody asked for that is
 * not followed by a CRASH within this is a consumer that stopped without saying why.
 */
const UNASKED_STOP_GRACE_MS = 5_000;

/**
 * One endpoint's consumer-group member. Hands records out in offset order, up to `prefetch`
 * unsettled; commits per partition the highest offset below which everything is settled; writes a
 * delivery mark ahead of handing records out, so that a member taking over after a crash counts the
 * redelivery. Records of the retry topic wait, their partition paused, until their due time.
 *
 * Fetched batches go into a buffer (a queue of chunks, in fetch order) and `eachBatch` returns
 * while the buffer is short, so kafkajs fetches the next batch while the endpoint works through
 * this one; settlements refill the prefetch from the buffer (one microtask per burst).
 */
export class KafkaConsumer implements Consumer, DeliveryOwner {
  readonly #deps: KafkaConsumerDeps;
  readonly #consumer: KafkajsConsumer;
  readonly #partitions = new Map<string, PartitionState>();
  readonly #deferred = new Map<string, () => void>();
  readonly #queue = new Fifo<Chunk>();
  /** Records and value bytes in `#queue` (parked ones not counted). */
  #buffered = 0;
  #bufferedBytes = 0;
  readonly #bufferBytes: number;
  #pumpScheduled = false;
  #assigned: Record<string, number[]> = {};
  #marks = new Map<string, Promise<Map<number, { offset: number; mark: DeliveryMark | undefined }>>>();
  #inFlight = 0;
  #paused = false;
  #closing = false;
  #closed = false;
  #wake: (() => void)[] = [];
  #commitTimer: (() => void) | undefined;
  /** Timers of records held for an in-process redelivery (their retry copy did not fit). */
  readonly #held = new Set<() => void>();
  #commitChain: Promise<void> = Promise.resolve();
  /** Set when the kafkajs consumer stopped for good without being asked (crash, unasked stop). */
  #dead: Error | undefined;
  #cancelStopGrace: (() => void) | undefined;

  constructor(deps: KafkaConsumerDeps) {
    this.#deps = deps;
    this.#paused = deps.paused;
    this.#bufferBytes = BUFFER_FETCHES * deps.config.maxBytesPerPartition;
    const { config } = deps;
    this.#consumer = deps.kafka.consumer({
      groupId: deps.topics.group,
      partitionAssigners: [pauseAwareAssigner(() => this.#paused)],
      sessionTimeout: config.sessionTimeoutMs,
      rebalanceTimeout: config.rebalanceTimeoutMs,
      heartbeatInterval: config.heartbeatIntervalMs,
      maxWaitTimeInMs: config.maxWaitTimeMs,
      maxBytesPerPartition: config.maxBytesPerPartition,
      allowAutoTopicCreation: false,
      // kafkajs restarts a crashed consumer only for retriable errors and never for others (such as
      // KafkaJSGroupCoordinatorNotFound while a broker restarts during a join): that consumer is
      // silently dead. With an owner listening (the endpoint's supervisor), kafkajs never restarts
      // it: every crash is reported and the owner makes a new consumer, with backoff, shown in
      // health meanwhile. Without one, kafkajs's own restart is kept (retriable crashes only).
      retry: {
        retries: 8,
        initialRetryTime: 100,
        maxRetryTime: 2_000,
        ...(deps.onStatus ? { restartOnFailure: async () => false } : {}),
      },
    });
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Joins the group and starts fetching; resolves after the first assignment, or after the first
   * join crashed (kafkajs's `run` resolves then too): with an owner listening, the crash is reported
   * as `stopped` (a broker still loading its coordinator at start-up is the owner's to retry);
   * without one, a member that will not be restarted makes `start` throw.
   */
  async start(): Promise<void> {
    const c = this.#consumer;
    c.on(c.events.GROUP_JOIN, (e) => this.#onAssigned(e.payload.memberAssignment));
    c.on(c.events.REBALANCING, () => {
      // Eager rebalance: everything may be revoked. Commit what is settled while we still can.
      void this.#flush();
    });
    c.on(c.events.CRASH, (e) => {
      this.#cancelStopGrace?.();
      this.#cancelStopGrace = undefined;
      if (!e.payload.restart) return this.#died(e.payload.error);
      // Unsupervised, and kafkajs restarts it: its partitions come back with the next join.
      this.#deps.logger.warn({ err: e.payload.error }, 'kafka consumer crashed; kafkajs restarts it');
      for (const state of [...this.#partitions.values()]) this.#revoke(state);
    });
    c.on(c.events.STOP, () => {
      if (this.#closing || this.#cancelStopGrace) return;
      this.#cancelStopGrace = this.#deps.clock.setTimer(
        () => this.#died(new Error('the kafka consumer stopped without being asked, and without a crash')),
        UNASKED_STOP_GRACE_MS,
      );
    });
    await c.connect();
    const { topics } = this.#deps;
    await c.subscribe({ topics: [topics.input, topics.retry, ...topics.subscriptions], fromBeginning: true });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.#eachBatch(payload),
    });
    if (this.#dead && !this.#deps.onStatus) throw this.#dead;
  }

  /**
   * The kafkajs consumer crashed (it has already left the group and disconnected) or stopped unasked:
   * it never consumes again. Its partitions are revoked (handed-out deliveries settle with
   * `LockLostError`; nothing is committed, so the next member reads them again), and the owner is
   * told so that it makes a new consumer. A crash while closing is the close's business.
   */
  #died(error: unknown): void {
    this.#cancelStopGrace?.();
    if (this.#closing) return;
    const { topics, logger } = this.#deps;
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.#dead = new TransportError(`kafka consumer of group ${topics.group} stopped: ${detail}`, { cause: error });
    this.#closing = true;
    this.#closed = true;
    this.#commitTimer?.();
    this.#commitTimer = undefined;
    this.#dropPartitions();
    this.#signal();
    this.#deps.onClosed(this);
    const { onStatus } = this.#deps;
    if (onStatus) onStatus({ kind: 'stopped', error: this.#dead });
    else logger.error({ err: error }, 'kafka consumer crashed; nothing consumes this group member any more');
  }

  /**
   * Lets go of every partition, as a consumer that stops does: held in-process retries cancelled,
   * deferred records dropped, handed-out deliveries revoked (they settle with `LockLostError`).
   */
  #dropPartitions(): void {
    for (const cancel of this.#held) cancel();
    this.#held.clear();
    for (const k of [...this.#deferred.keys()]) this.#undefer(k);
    for (const state of [...this.#partitions.values()]) this.#revoke(state);
  }

  #onAssigned(assignment: Record<string, number[]>): void {
    const now = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) for (const p of partitions) now.add(key(topic, p));
    for (const [k, state] of [...this.#partitions]) if (!now.has(k)) this.#revoke(state);
    for (const k of [...this.#deferred.keys()]) if (!now.has(k)) this.#undefer(k);
    this.#assigned = assignment;
    this.#marks = new Map();
    this.#applyPauses();
  }

  #revoke(state: PartitionState): void {
    if (state.revoked) return;
    // Its deliveries see `revoked` and settle with LockLostError; its buffered records are dropped
    // (never handed out, so never committed: the next owner reads them).
    state.revoked = true;
    this.#partitions.delete(key(state.topic, state.partition));
    this.#inFlight -= state.tracker.unsettled;
    state.parked = [];
    for (const chunk of this.#queue.removeWhere((c) => c.state === state)) this.#count(chunk, -1);
    this.#signal();
    this.#schedulePump();
  }

  /** Pauses exactly the partitions that should not be fetched: all while paused, deferred ones always. */
  #applyPauses(): void {
    if (this.#closed) return;
    const pause: { topic: string; partitions: number[] }[] = [];
    const resume: { topic: string; partitions: number[] }[] = [];
    for (const [topic, partitions] of Object.entries(this.#assigned)) {
      const p: number[] = [];
      const r: number[] = [];
      for (const partition of partitions) {
        (this.#paused || this.#closing || this.#deferred.has(key(topic, partition)) ? p : r).push(partition);
      }
      if (p.length > 0) pause.push({ topic, partitions: p });
      if (r.length > 0) resume.push({ topic, partitions: r });
    }
    if (pause.length > 0) this.#consumer.pause(pause);
    if (resume.length > 0) this.#consumer.resume(resume);
  }

  #defer(topic: string, partition: number, dueAt: number): void {
    const k = key(topic, partition);
    if (this.#deferred.has(k)) return;
    const cancel = this.#deps.clock.setTimer(
      () => {
        this.#deferred.delete(k);
        this.#unpark(k);
        this.#applyPauses();
      },
      Math.max(1, dueAt - this.#deps.clock.now() + 1),
    );
    this.#deferred.set(k, cancel);
    this.#applyPauses();
  }

  #undefer(k: string): void {
    this.#deferred.get(k)?.();
    this.#deferred.delete(k);
  }

  /** Puts a retry partition's parked chunks back at the front of the queue, in order. */
  #unpark(k: string): void {
    const state = this.#partitions.get(k);
    if (!state || state.parked.length === 0) return;
    const parked = state.parked;
    state.parked = [];
    for (let i = parked.length - 1; i >= 0; i--) {
      const chunk = parked[i] as Chunk;
      this.#queue.unshift(chunk);
      this.#count(chunk, 1);
    }
    this.#schedulePump();
  }

  async #partitionState(topic: string, partition: number, firstOffset: number): Promise<PartitionState> {
    const k = key(topic, partition);
    const existing = this.#partitions.get(k);
    if (existing) return existing;
    let marks = this.#marks.get(topic);
    if (!marks) {
      marks = this.#loadMarks(topic);
      this.#marks.set(topic, marks);
    }
    const committed = (await marks).get(partition);
    const again = this.#partitions.get(k);
    if (again) return again;
    const state: PartitionState = {
      topic,
      partition,
      isRetry: topic === this.#deps.topics.retry,
      tracker: new OffsetTracker(firstOffset),
      prior: committed?.mark,
      priorFrom: committed?.offset ?? 0,
      mark: undefined,
      markedThrough: -1,
      fetchedNext: firstOffset,
      parked: [],
      committedOffset: committed?.offset,
      committedMeta: null,
      revoked: false,
    };
    this.#partitions.set(k, state);
    return state;
  }

  async #loadMarks(topic: string): Promise<Map<number, { offset: number; mark: DeliveryMark | undefined }>> {
    const result = new Map<number, { offset: number; mark: DeliveryMark | undefined }>();
    try {
      const [offsets] = await this.#deps.admin.fetchOffsets({ groupId: this.#deps.topics.group, topics: [topic] });
      for (const p of offsets?.partitions ?? []) {
        const offset = Number(p.offset);
        if (offset >= 0) result.set(p.partition, { offset, mark: decodeDeliveryMark(p.metadata) });
      }
    } catch (error) {
      // Without the mark a re-read record counts as a first delivery: deliveryCount is a lower bound.
      this.#deps.logger.warn({ err: error, topic }, 'could not read the group delivery marks');
    }
    return result;
  }

  /**
   * Takes a fetched batch into the buffer, writes the delivery mark that covers it, then returns at
   * once while the buffer is short (so kafkajs fetches the next batch meanwhile), else waits,
   * heartbeating, until it is. The batch's records are resolved for kafkajs's fetch position only;
   * commits come from the offset trackers.
   */
  async #eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const messages = batch.messages;
    if (messages.length === 0 || this.#closing || !payload.isRunning() || payload.isStale()) return;
    const first = messages[0] as KafkaMessage;
    const last = messages[messages.length - 1] as KafkaMessage;
    const state = await this.#partitionState(batch.topic, batch.partition, Number(first.offset));
    if (state.revoked || this.#closing) return;
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
      // Write-ahead: the group learns these records were handed out before any of them is.
      const { prior } = state;
      const covers = prior !== undefined && lastOffset <= prior.through && from >= state.priorFrom;
      state.mark = { through: lastOffset, count: covers ? prior.count + 1 : 1 };
      await this.#flush();
      if (state.revoked || this.#closing) return;
    }
    state.markedThrough = lastOffset;
    this.#pump();
    if (!(await this.#waitForRoom(payload))) return;
    await payload.heartbeat();
  }

  /**
   * Waits until the buffer is down to its limit (waking when the pump drains it, not per message),
   * heartbeating; false when the batch should stop instead.
   */
  async #waitForRoom(payload: EachBatchPayload): Promise<boolean> {
    while (this.#full) {
      if (this.#closing || this.#paused || !payload.isRunning() || payload.isStale()) return false;
      await new Promise<void>((resolve) => {
        const cancel = this.#deps.clock.setTimer(resolve, this.#deps.config.heartbeatIntervalMs);
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
  #schedulePump(): void {
    if (this.#pumpScheduled || this.#buffered === 0) return;
    this.#pumpScheduled = true;
    setImmediate(this.#pump);
  }

  /** Hands buffered records out, in fetch order, while the prefetch has room. */
  readonly #pump = (): void => {
    this.#pumpScheduled = false;
    const queue = this.#queue;
    const { prefetch, callback } = this.#deps;
    while (this.#inFlight < prefetch && !this.#paused && !this.#closing) {
      const chunk = queue.peek();
      if (chunk === undefined) break;
      const { state, messages } = chunk;
      const message = messages[chunk.pos] as KafkaMessage;
      const offset = Number(message.offset);
      // Only the newest chunk can wait for its mark, and nothing was fetched after it.
      if (offset > state.markedThrough) break;
      if (state.isRetry && (state.parked.length > 0 || this.#deferred.has(key(state.topic, state.partition)))) {
        this.#park(chunk);
        continue;
      }
      const raw = headersFromRecord(message.headers);
      if (state.isRetry) {
        const dueAt = Number(raw[KafkaHeader.dueAt] ?? 0);
        if (dueAt > this.#deps.clock.now()) {
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
      this.#inFlight++;
      const delivery = this.#delivery(state, message, offset, raw);
      try {
        callback(delivery);
      } catch (error) {
        this.#deps.logger.error({ err: error }, 'delivery callback threw; the record will come again');
      }
    }
    if (this.#wake.length > 0 && !this.#full) this.#signal();
  };

  get #full(): boolean {
    return this.#buffered > this.#deps.prefetch && this.#bufferedBytes > this.#bufferBytes;
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

  #delivery(state: PartitionState, message: KafkaMessage, offset: number, raw: Record<string, string>): KafkaDelivery {
    const { topic, partition } = state;
    let headers = raw;
    if (KafkaHeader.dueAt in raw) {
      headers = { ...raw };
      delete headers[KafkaHeader.dueAt];
    }
    const before = Number.parseInt(raw[SluiceHeader.deliveryCount] ?? '0', 10);
    const reads =
      state.prior !== undefined && offset >= state.priorFrom && offset <= state.prior.through
        ? state.prior.count + 1
        : 1;
    const partitionKey = message.key === null ? undefined : message.key.toString('utf8');
    const body =
      message.value ??
      tombstoneBody({
        topic,
        partition,
        offset: message.offset,
        key: partitionKey,
        timestampMs: Number(message.timestamp),
        type: raw[SluiceHeader.messageType] ?? this.#deps.naming.typeOfTopic(topic) ?? UNKNOWN_TOMBSTONE_TYPE,
      });
    return new KafkaDelivery(
      this,
      state,
      offset,
      message.key,
      raw,
      this.#deps.topics.address,
      body,
      headers,
      (Number.isFinite(before) && before > 0 ? before : 0) + reads,
      partitionKey,
    );
  }

  #signal(): void {
    const waiting = this.#wake;
    if (waiting.length === 0) return;
    this.#wake = [];
    for (const wake of waiting) wake();
  }

  settled(delivery: KafkaDelivery): void {
    const state = delivery.lease as PartitionState;
    if (state.revoked || !state.tracker.settle(delivery.offset)) return;
    this.#inFlight--;
    if (this.#closing) {
      if (this.#wake.length > 0) this.#signal();
    } else this.#schedulePump();
    this.#scheduleCommit();
  }

  async writeRetryCopy(delivery: KafkaDelivery, options: ReleaseOptions): Promise<boolean> {
    const headers: Record<string, string> = { ...delivery.rawHeaders, ...options.headers };
    headers[SluiceHeader.deliveryCount] = String(delivery.deliveryCount);
    headers[KafkaHeader.dueAt] = String(this.#deps.clock.now() + Math.max(0, options.delayMs ?? 0));
    headers[KafkaHeader.source] = delivery.deliveryId;
    try {
      await this.#deps.producer.send({
        topic: this.#deps.topics.retry,
        acks: -1,
        messages: [{ key: delivery.key, value: delivery.body, headers }],
      });
      return true;
    } catch (error) {
      if (!isMessageTooLarge(error)) throw error;
      this.#redeliverLater(delivery, options);
      return false;
    }
  }

  /**
   * The copy does not fit the retry topic: rather than hold the partition's commits for good, keep
   * the record (its offset unsettled, its prefetch slot taken) and hand it out again after the
   * delay. A crash or a rebalance meanwhile loses nothing: the record is read again from the
   * committed offset.
   */
  #redeliverLater(delivery: KafkaDelivery, options: ReleaseOptions): void {
    const state = delivery.lease as PartitionState;
    const count = String(delivery.deliveryCount);
    const raw: Record<string, string> = { ...delivery.rawHeaders, ...options.headers };
    raw[SluiceHeader.deliveryCount] = count;
    const headers: Record<string, string> = { ...delivery.headers, ...options.headers };
    headers[SluiceHeader.deliveryCount] = count;
    const delayMs = Math.max(0, options.delayMs ?? 0);
    this.#deps.logger.warn(
      { deliveryId: delivery.deliveryId, bytes: delivery.body.length, topic: this.#deps.topics.retry, delayMs },
      'retry copy too large for the retry topic; redelivering the record in process after the delay instead',
    );
    const cancel = this.#deps.clock.setTimer(() => {
      this.#held.delete(cancel);
      if (state.revoked || this.#closing) return;
      const again = new KafkaDelivery(
        this,
        state,
        delivery.offset,
        delivery.key,
        raw,
        delivery.address,
        delivery.body,
        headers,
        delivery.deliveryCount + 1,
        delivery.partitionKey,
      );
      try {
        this.#deps.callback(again);
      } catch (error) {
        this.#deps.logger.error({ err: error }, 'delivery callback threw; the record will come again');
      }
    }, delayMs);
    this.#held.add(cancel);
  }

  async writeDeadLetter(delivery: KafkaDelivery, fault: FaultDetails): Promise<void> {
    const original: Record<string, string> = { ...delivery.rawHeaders };
    delete original[KafkaHeader.dueAt];
    original[SluiceHeader.deliveryCount] = String(delivery.deliveryCount);
    const headers = deadLetterHeaders(original, fault);
    headers[KafkaHeader.source] = delivery.deliveryId;
    const topic = this.#deps.topics.deadLetter;
    try {
      await this.#deps.producer.send({
        topic,
        acks: -1,
        messages: [{ key: delivery.key, value: delivery.body, headers }],
      });
    } catch (error) {
      if (!isMessageTooLarge(error)) throw error;
      // The copy (body + fault headers) does not fit the dead-letter topic. Rather than hold the
      // partition's commits forever, dead-letter a reference: the fault, no body, and where the
      // body stays (the source record, kept for its topic's retention; redrive reads it there).
      headers[KafkaHeader.bodyOmitted] =
        `${delivery.body.length} bytes did not fit ${topic} (max.message.bytes); the body stays at ${delivery.deliveryId}`;
      this.#deps.logger.warn(
        { deliveryId: delivery.deliveryId, bytes: delivery.body.length, topic },
        'dead-letter copy too large for the dead-letter topic; dead-lettered a reference to the record instead',
      );
      await this.#deps.producer.send({
        topic,
        acks: -1,
        messages: [{ key: delivery.key, value: Buffer.alloc(0), headers }],
      });
    }
  }

  #scheduleCommit(): void {
    if (this.#commitTimer || this.#closed) return;
    this.#commitTimer = this.#deps.clock.setTimer(() => {
      this.#commitTimer = undefined;
      void this.#flush();
    }, this.#deps.config.commitIntervalMs);
  }

  /** Commits every partition's committable offset and mark; one commit at a time, in order. */
  #flush(): Promise<void> {
    this.#commitChain = this.#commitChain.then(
      () => this.#commitNow(),
      () => this.#commitNow(),
    );
    return this.#commitChain.catch((error: unknown) => {
      this.#deps.logger.debug({ err: error }, 'offset commit failed; retried with the next one');
    });
  }

  async #commitNow(): Promise<void> {
    const offsets: { topic: string; partition: number; offset: string; metadata: string | null }[] = [];
    const states: [PartitionState, number, string | null][] = [];
    for (const state of this.#partitions.values()) {
      const offset = state.tracker.committable;
      if (offset === undefined) continue;
      const metadata = encodeDeliveryMark(state.mark);
      if (offset === state.committedOffset && metadata === state.committedMeta) continue;
      offsets.push({ topic: state.topic, partition: state.partition, offset: String(offset), metadata });
      states.push([state, offset, metadata]);
    }
    if (offsets.length === 0) return;
    await this.#consumer.commitOffsets(offsets);
    for (const [state, offset, metadata] of states) {
      state.committedOffset = offset;
      state.committedMeta = metadata;
    }
  }

  async pause(): Promise<void> {
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    this.#applyPauses();
    this.#signal();
  }

  async resume(): Promise<void> {
    if (!this.#paused || this.#closing) return;
    this.#paused = false;
    this.#applyPauses();
    this.#schedulePump();
  }

  /**
   * Stops fetching, waits up to `drainTimeoutMs` for handed-out deliveries to settle, commits what is
   * settled, then leaves the group. Deliveries still unsettled settle with `LockLostError` and come
   * again to the next owner of their partition.
   */
  async close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#applyPauses();
    this.#signal();
    const drainTimeoutMs = options.drainTimeoutMs ?? 0;
    if (this.#inFlight > 0 && drainTimeoutMs > 0) {
      const deadline = this.#deps.clock.now() + drainTimeoutMs;
      while (this.#inFlight > 0 && this.#deps.clock.now() < deadline) {
        await new Promise<void>((resolve) => {
          const cancel = this.#deps.clock.setTimer(resolve, Math.max(1, deadline - this.#deps.clock.now()));
          this.#wake.push(() => {
            cancel();
            resolve();
          });
        });
      }
    }
    await this.#shutdown();
  }

  /**
   * As a crash, but tidy: commits only what is settled (and the delivery marks), then disconnects.
   * Used by `transport.close()`.
   */
  async abandon(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#applyPauses();
    this.#signal();
    await this.#shutdown();
  }

  async #shutdown(): Promise<void> {
    this.#cancelStopGrace?.();
    this.#commitTimer?.();
    this.#commitTimer = undefined;
    await this.#flush();
    this.#closed = true;
    this.#dropPartitions();
    await this.#consumer.disconnect().catch((error: unknown) => {
      this.#deps.logger.warn({ err: error }, 'kafka consumer disconnect failed');
    });
    this.#deps.onClosed(this);
  }
}
