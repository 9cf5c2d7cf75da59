import type { Consumer as KafkajsConsumer } from 'kafkajs';
import type { Logger } from 'pino';
import type { Consumer, ConsumeOptions, DeliveryCallback } from '../../src/transport-core/index.js';
import { ConsumerGate } from '../../src/transport-core/index.js';
import type { KafkaClient } from './kafka-client.js';
import type { DeliveryOwner, KafkaDelivery } from './kafka-delivery.js';
import { OffsetCommits } from './offset-commits.js';
import {
  type CommittedMark,
  loadDeliveryMarks,
  newPartitionState,
  type PartitionState,
  partitionKeyOf as key,
} from './partition-state.js';
import { applyPauses, groupMember } from './group-member.js';
import { RecordFeed } from './record-feed.js';
import { HeldRecords } from './held-records.js';
import { SettlementCopies } from './settlement-copies.js';
import type { EndpointTopics } from './topic-naming.js';

export interface KafkaConsumerDeps extends KafkaClient {
  readonly logger: Logger;
  readonly topics: EndpointTopics;
  readonly callback: DeliveryCallback;
  /** `paused`: join paused (the pause-aware assignor then gives this member no partitions while others run). */
  readonly options: ConsumeOptions;
  readonly onClosed: (consumer: KafkaConsumer) => void;
}

/**
 * kafkajs emits STOP from inside its crash handling, before CRASH. A STOP nobody asked for that is
 * not followed by a CRASH within this is a consumer that stopped without saying why.
 */
const UNASKED_STOP_GRACE_MS = 5_000;

/**
 * One endpoint's consumer-group member: joins, follows assignments and revocations, and provides
 * the settlement kernel's primitives for its records (`DeliveryOwner`). Records reach the endpoint
 * through the {@link RecordFeed} (offset order, up to `prefetch` unsettled, retry records at their
 * due time); {@link OffsetCommits} commits per partition the highest offset below which everything
 * is settled, with the delivery mark written ahead of handing records out, so that a member taking
 * over after a crash counts the redelivery.
 */
export class KafkaConsumer implements Consumer, DeliveryOwner {
  readonly #deps: KafkaConsumerDeps;
  readonly #consumer: KafkajsConsumer;
  /** Prefetch, paused / closing, the drain: the kernel's gate. */
  readonly #gate: ConsumerGate;
  readonly #commits: OffsetCommits;
  readonly copies: SettlementCopies;
  readonly #partitions = new Map<string, PartitionState>();
  readonly #feed: RecordFeed;
  readonly held: HeldRecords;
  #assigned: Record<string, number[]> = {};
  #marks = new Map<string, Promise<Map<number, CommittedMark>>>();
  /** Shut down: left the group (or crashed); nothing is paused or resumed any more. */
  #closed = false;
  #cancelStopGrace: (() => void) | undefined;

  constructor(deps: KafkaConsumerDeps) {
    this.#deps = deps;
    this.#gate = new ConsumerGate({
      ...deps.options,
      clock: deps.clock,
      logger: deps.logger,
      what: `kafka consumer of group ${deps.topics.group}`,
    });
    this.copies = new SettlementCopies(deps);
    this.held = new HeldRecords(deps, () => this.#closing);
    this.#feed = new RecordFeed({
      ...deps,
      owner: this,
      gate: this.#gate,
      partitionState: (topic, partition, firstOffset) => this.#partitionState(topic, partition, firstOffset),
      partition: (k) => this.#partitions.get(k),
      flushMarks: () => this.#commits.flush(),
      applyPauses: () => this.#applyPauses(),
      closing: () => this.#closing,
    });
    this.#consumer = groupMember(deps, () => this.#gate.paused);
    this.#commits = new OffsetCommits(this.#consumer, () => this.#partitions.values(), deps);
  }

  get inFlight(): number {
    return this.#gate.inFlight;
  }

  /** Closing or closed, or stopped on its own: fetches and hands out nothing more. */
  get #closing(): boolean {
    return this.#gate.closed || this.#gate.stopped;
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
      void this.#commits.flush();
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
      eachBatch: (payload) => this.#feed.eachBatch(payload),
    });
    const dead = this.#gate.stoppedBy;
    if (dead && !this.#deps.options.onStatus) throw dead;
  }

  /**
   * The kafkajs consumer crashed (it has already left the group and disconnected) or stopped unasked:
   * it never consumes again. Its partitions are revoked (handed-out deliveries settle with
   * `LockLostError`; nothing is committed, so the next member reads them again), and the owner is
   * told so that it makes a new consumer. A crash while closing is the close's business.
   */
  #died(error: unknown): void {
    this.#cancelStopGrace?.();
    if (!this.#gate.stop(`kafka consumer of group ${this.#deps.topics.group} stopped`, error)) return;
    this.#letGo();
    this.#feed.signal();
    this.#deps.onClosed(this);
  }

  /**
   * Lets go of every partition, as a consumer that stops does: commits stopped, held in-process
   * retries cancelled, deferred records dropped, handed-out deliveries revoked (they settle with
   * `LockLostError`). Nothing is paused or resumed any more.
   */
  #letGo(): void {
    this.#closed = true;
    this.#commits.stop();
    this.held.dropAll();
    this.#feed.dropAll();
    for (const state of [...this.#partitions.values()]) this.#revoke(state);
  }

  #onAssigned(assignment: Record<string, number[]>): void {
    const now = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) for (const p of partitions) now.add(key(topic, p));
    for (const [k, state] of [...this.#partitions]) if (!now.has(k)) this.#revoke(state);
    this.#feed.keepOnly(now);
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
    this.#gate.settled(state.tracker.unsettled);
    this.#feed.dropPartition(state);
  }

  /** Pauses exactly the partitions that should not be fetched: all while paused, deferred ones always. */
  #applyPauses(): void {
    if (this.#closed) return;
    const hold = this.#gate.paused || this.#closing;
    applyPauses(this.#consumer, this.#assigned, (topic, p) => hold || this.#feed.isDeferred(topic, p));
  }

  async #partitionState(topic: string, partition: number, firstOffset: number): Promise<PartitionState> {
    const k = key(topic, partition);
    const existing = this.#partitions.get(k);
    if (existing) return existing;
    let marks = this.#marks.get(topic);
    if (!marks) {
      marks = loadDeliveryMarks(this.#deps, topic);
      this.#marks.set(topic, marks);
    }
    const committed = (await marks).get(partition);
    const again = this.#partitions.get(k);
    if (again) return again;
    const state = newPartitionState(topic, partition, firstOffset, committed, topic === this.#deps.topics.retry);
    this.#partitions.set(k, state);
    return state;
  }

  settled(delivery: KafkaDelivery): void {
    const state = delivery.lease as PartitionState;
    if (state.revoked || !state.tracker.settle(delivery.offset)) return;
    this.#gate.settled();
    if (this.#closing) this.#feed.signal();
    else this.#feed.schedulePump();
    if (!this.#closed) this.#commits.schedule();
  }

  async pause(): Promise<void> {
    if (this.#closed || !this.#gate.pause()) return;
    this.#applyPauses();
    this.#feed.signal();
  }

  async resume(): Promise<void> {
    if (this.#closing || !this.#gate.resume()) return;
    this.#applyPauses();
    this.#feed.schedulePump();
  }

  /**
   * Stops fetching, waits up to `drainTimeoutMs` for handed-out deliveries to settle, commits what is
   * settled, then leaves the group. Deliveries still unsettled settle with `LockLostError` and come
   * again to the next owner of their partition. Without a drain (`transport.close()`), as a crash
   * but tidy: it commits only what is settled (and the delivery marks).
   */
  async close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (this.#closing) return;
    this.#gate.close();
    this.#applyPauses();
    this.#feed.signal();
    await this.#gate.drain(options.drainTimeoutMs);
    await this.#shutdown();
  }

  async #shutdown(): Promise<void> {
    this.#cancelStopGrace?.();
    this.#commits.stop();
    await this.#commits.flush();
    this.#letGo();
    await this.#consumer.disconnect().catch((error: unknown) => {
      this.#deps.logger.warn({ err: error }, 'kafka consumer disconnect failed');
    });
    this.#deps.onClosed(this);
  }
}
