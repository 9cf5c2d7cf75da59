import { randomUUID } from 'node:crypto';
import kafkajs, { type KafkaMessage } from 'kafkajs';
import { createDeferred, delay, errorText, settleWithin, withTimeout } from '../../src/transport-core/index.js';
import { memberSettings } from './group-member.js';
import type { KafkaClient } from './kafka-client.js';

/** A record read back from a topic, with its partition. */
export interface RangeRecord {
  readonly partition: number;
  readonly message: KafkaMessage;
}

export interface ReadTopicRangeOptions {
  /** The group to read as; a throwaway group when omitted. */
  readonly groupId?: string;
  /**
   * Runs while the reader is still the group's member, with the records read: `commit` stores the
   * group's offsets (how redrive removes dead letters).
   */
  readonly whileMember?: (
    records: RangeRecord[],
    commit: (offsets: Map<number, number>) => Promise<void>,
  ) => Promise<void>;
  /** Per partition: read offsets `from` (inclusive) to `to` (exclusive). */
  readonly ranges: ReadonlyMap<number, { from: number; to: number }>;
  /** How long the whole read may take, joins included (default 60 s). */
  readonly timeoutMs?: number;
}

/** How long one read may take in all (group joins, then the fetches), unless the caller says. */
const READ_TIMEOUT_MS = 60_000;
/** The pause before a reader whose member crashed joins again. */
const REJOIN_DELAY_MS = 250;
/**
 * How long a reader waits for its consumer to disconnect: kafkajs first waits for the requests in
 * flight (a JoinGroup: up to the rebalance timeout). The rest goes on in the background.
 */
const DISCONNECT_WAIT_MS = 5_000;

/** A read's group member crashed (kafkajs's `run` resolves even when its first join failed). */
class MemberCrashed extends Error {
  constructor(
    message: string,
    /** Joining again cannot help: the broker refused the credentials or the group. */
    readonly fatal: boolean,
    cause: unknown,
  ) {
    super(message, { cause });
  }
}

/**
 * Reads fixed offset ranges of one topic through a consumer group (kafkajs has no group-less
 * consumer), committing nothing unless `whileMember` does. Costs one group join: on brokers with the
 * default `group.initial.rebalance.delay.ms` (3 s) that is the floor of every call.
 *
 * The loop below supervises the member, kafkajs never restarts it (a restart could outlive the read
 * and sit in the group, taking partitions from every later reader). A member that crashes (its join
 * failed: the coordinator was still loading, the broker did not answer) is disconnected and a new
 * one joins after a short pause, reading on from where the last stopped; every join seeks the
 * partitions still to read, so a member never starts from the group's committed offsets. A crash
 * the broker's refusal caused (authentication, authorization) rejects at once. Partitions with
 * nothing (more) to read are paused, so fetches bring only records still wanted. Rejects when the
 * whole read, joins included, takes longer than `timeoutMs` (60 s), naming the last crash; waiting
 * for the consumer to disconnect adds at most 5 s.
 */
export async function readTopicRange(
  { kafka, config }: Pick<KafkaClient, 'kafka' | 'config'>,
  topic: string,
  options: ReadTopicRangeOptions,
): Promise<RangeRecord[]> {
  /** Per partition still to read: the next offset wanted and the end (exclusive). */
  const pending = new Map<number, { next: number; to: number }>();
  for (const [p, r] of options.ranges) if (r.to > r.from) pending.set(p, { next: r.from, to: r.to });
  if (pending.size === 0) return [];
  const out: RangeRecord[] = [];
  const groupId = options.groupId ?? `sluice-reader-${randomUUID()}`;
  const timeoutMs = options.timeoutMs ?? READ_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let lastCrash: MemberCrashed | undefined;
  const timedOut = () =>
    new Error(`reading ${topic} timed out after ${timeoutMs} ms${lastCrash ? ` (last: ${lastCrash.message})` : ''}`, {
      cause: lastCrash,
    });
  for (;;) {
    const consumer = kafka.consumer({
      groupId,
      ...memberSettings(config),
      retry: { retries: 5, restartOnFailure: async () => false },
    });
    const finished = createDeferred<void>();
    finished.promise.catch(() => {}); // a crash before anyone awaits it is read below
    /** The read is done with this member (returned, failed, or moved on to a new one). */
    let gone = false;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      // A join that ends after the read gave up on it (kafkajs reconnects for it after our
      // disconnect, whose stop no longer reaches its runner): failing it here, not retriable, ends
      // the member, and kafkajs does not restart it.
      if (gone) throw new kafkajs.KafkaJSNonRetriableError(`the read of ${topic} this member joined for has ended`);
      for (const [partition, range] of pending) consumer.seek({ topic, partition, offset: String(range.next) });
      // A partition with nothing (more) to read is not fetched at all: unsought, it would be read
      // from its beginning (and, never resolved, again on every fetch) until the read ends.
      const idle = (payload.memberAssignment[topic] ?? []).filter((p) => !pending.has(p));
      if (idle.length > 0) consumer.pause([{ topic, partitions: idle }]);
    });
    consumer.on(consumer.events.CRASH, (event) => {
      const { error } = event.payload;
      const text = `reading ${topic}: the group member crashed: ${errorText(error)}`;
      finished.reject(new MemberCrashed(text, refusedByBroker(error), error));
    });
    try {
      await withTimeout(
        (async () => {
          await consumer.connect();
          await consumer.subscribe({ topics: [topic], fromBeginning: true });
          await consumer.run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            eachBatch: async ({ batch, resolveOffset, pause }) => {
              const range = pending.get(batch.partition);
              if (!range) return;
              for (const message of batch.messages) {
                const offset = Number(message.offset);
                resolveOffset(message.offset);
                if (offset < range.next) continue;
                if (offset >= range.to) break;
                out.push({ partition: batch.partition, message });
                range.next = offset + 1;
              }
              if (Number(batch.lastOffset()) >= range.to - 1) {
                pending.delete(batch.partition);
                pause(); // this partition is read: the others' fetches no longer bring its records
              }
              if (pending.size === 0) finished.resolve();
            },
          });
          await finished.promise;
        })(),
        Math.max(0, deadline - Date.now()),
        timedOut,
      );
      out.sort(byPosition);
      await options.whileMember?.(out, async (offsets) => {
        const list = [...offsets].map(([partition, offset]) => ({ topic, partition, offset: String(offset) }));
        if (list.length > 0) await consumer.commitOffsets(list);
      });
      return out;
    } catch (error) {
      if (!(error instanceof MemberCrashed) || error.fatal) throw error;
      lastCrash = error;
      if (Date.now() + REJOIN_DELAY_MS >= deadline) throw timedOut();
    } finally {
      gone = true;
      await settleWithin(consumer.disconnect(), DISCONNECT_WAIT_MS);
    }
    await delay(REJOIN_DELAY_MS);
  }
}

/** The broker refused the client (credentials, ACLs): joining again would be refused again. */
function refusedByBroker(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e.name === 'KafkaJSSASLAuthenticationError') return true;
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string' && /AUTHORIZATION_FAILED|SASL_AUTHENTICATION_FAILED/.test(type)) return true;
  }
  return false;
}

function byPosition(a: RangeRecord, b: RangeRecord): number {
  return a.partition - b.partition || Number(a.message.offset) - Number(b.message.offset);
}
