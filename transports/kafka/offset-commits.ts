import type { Consumer as KafkajsConsumer } from 'kafkajs';
import { Mutex } from '../../src/transport-core/index.js';
import { encodeDeliveryMark } from './delivery-mark.js';
import type { KafkaConsumerDeps } from './kafka-consumer.js';
import type { PartitionState } from './partition-state.js';

/**
 * Commits, per partition, the offset below which everything is settled, with the delivery mark as
 * its metadata: at most one commit under way, the next after `commitIntervalMs` (or at once on
 * {@link flush}: a rebalance, a batch's write-ahead mark, a close).
 */
export class OffsetCommits {
  #timer: (() => void) | undefined;
  /** One commit at a time, in order. */
  readonly #serial = new Mutex();
  #stopped = false;

  constructor(
    private readonly consumer: KafkajsConsumer,
    private readonly partitions: () => Iterable<PartitionState>,
    private readonly deps: Pick<KafkaConsumerDeps, 'clock' | 'config' | 'logger'>,
  ) {}

  /** A commit after the interval, unless one is already planned. */
  schedule(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = this.deps.clock.setTimer(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.deps.config.commitIntervalMs);
  }

  /** No more planned commits (a flush still commits). */
  stop(): void {
    this.#stopped = true;
    this.#timer?.();
    this.#timer = undefined;
  }

  /** Commits every partition's committable offset and mark; one commit at a time, in order. */
  flush(): Promise<void> {
    return this.#serial
      .run(() => this.#commitNow())
      .catch((error: unknown) => {
        this.deps.logger.debug({ err: error }, 'offset commit failed; retried with the next one');
      });
  }

  async #commitNow(): Promise<void> {
    const offsets: { topic: string; partition: number; offset: string; metadata: string | null }[] = [];
    const states: [PartitionState, number, string | null][] = [];
    for (const state of this.partitions()) {
      const offset = state.tracker.committable;
      if (offset === undefined) continue;
      const metadata = encodeDeliveryMark(state.mark);
      if (offset === state.committedOffset && metadata === state.committedMeta) continue;
      offsets.push({ topic: state.topic, partition: state.partition, offset: String(offset), metadata });
      states.push([state, offset, metadata]);
    }
    if (offsets.length === 0) return;
    await this.consumer.commitOffsets(offsets);
    for (const [state, offset, metadata] of states) {
      state.committedOffset = offset;
      state.committedMeta = metadata;
    }
  }
}
