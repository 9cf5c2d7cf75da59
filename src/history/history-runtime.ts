import type { Logger } from 'pino';
import type { DeliveryObserver } from '../pipeline/delivery-observer.js';
import type { Envelope } from '../envelope/envelope.js';
import type { InboxStore } from '../inbox/inbox-store.js';
import type { Clock } from '../internal/clock.js';
import type { DecodedContext } from '../pipeline/context.js';
import type { InboxHistoryTap } from '../pipeline/history-tap.js';
import { DependencyError } from '../errors/sluice-error.js';
import type { HistoryBackend } from './history-backend.js';
import type { HistoryConfig } from './history-config.js';
import type { HistoryOutcome, HistoryRecord, LostTo } from './history-record.js';

/** One cleanup run deletes at most this many batches, then waits for the next interval. */
const MAX_CLEANUP_ROUNDS = 100;

export interface HistoryRuntimeDeps {
  readonly store: InboxStore<unknown> & { transaction<R>(fn: (tx: unknown) => Promise<R>): Promise<R> };
  readonly backend: HistoryBackend;
  readonly config: HistoryConfig;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * The history of a bus (docs/explain.md): one row per final outcome of a keyed message on an
 * endpoint that keeps it. Applied, duplicate, stale and tombstoned are written in the inbox
 * transaction that decided them (a rolled-back attempt, a savepoint that failed, a rerun of a group
 * leave nothing). A dead letter is written when its settlement succeeded, in a transaction of its
 * own; those writes are awaited by `drain()` before the store closes. Releases (kill switch,
 * dependency failures, shutdown, busy) and retries are not final and not written.
 */
export class HistoryRuntime {
  readonly #pending = new Set<Promise<void>>();

  constructor(private readonly deps: HistoryRuntimeDeps) {}

  get config(): HistoryConfig {
    return this.deps.config;
  }

  /** Creates the table when missing. A database that cannot be reached throws `DependencyError`. */
  init(): Promise<void> {
    return this.deps.store.transaction((tx) => this.deps.backend.init(tx));
  }

  /** Runs `fn` in a transaction of the store with the backend (explain's reads). */
  read<R>(fn: (backend: HistoryBackend, tx: unknown) => Promise<R>): Promise<R> {
    return this.deps.store.transaction((tx) => fn(this.deps.backend, tx));
  }

  /** The inbox stage's tap for one endpoint. */
  tapFor(endpoint: string): InboxHistoryTap<HistoryRecord> {
    return {
      duplicate: (ctx) => {
        if (ctx.envelope.key === undefined) return undefined;
        return (tx) =>
          this.#own(this.deps.backend.write(tx, this.#record(endpoint, ctx.envelope, 'duplicate', ctx.attempt)));
      },
      rowOf: (ctx, outcome) => {
        const { envelope } = ctx;
        if (envelope.key === undefined) return undefined;
        if (outcome.kind === 'completed') return this.#record(endpoint, envelope, 'applied', ctx.attempt);
        if (outcome.kind !== 'skipped') return undefined;
        if (outcome.reason !== 'stale' && outcome.reason !== 'tombstoned' && outcome.reason !== 'duplicate')
          return undefined;
        const facts = outcome.ordering;
        const lostTo: LostTo | null = facts
          ? { messageId: facts.lastMessageId, occurredAt: facts.lastAppliedAt, tombstone: facts.lastTombstone }
          : null;
        return this.#record(endpoint, envelope, outcome.reason, ctx.attempt, {
          reason: outcome.reason === 'duplicate' ? null : outcome.reason,
          detail: outcome.detail ?? null,
          lostTo,
        });
      },
      write: (tx, row) => this.#own(this.deps.backend.write(tx, row)),
      writeMany: (tx, rows) => this.#own(this.deps.backend.writeMany(tx, rows)),
    };
  }

  /**
   * Sees every delivery of the endpoint leave (before `inner`, which it calls first): a dead letter
   * of a keyed message is written with its fault's reason, after its settlement succeeded.
   */
  observerFor(endpoint: string, inner: DeliveryObserver | undefined): DeliveryObserver {
    return {
      done: (ctx, outcome) => {
        inner?.done(ctx, outcome);
        if (outcome?.kind !== 'deadLetter') return;
        const envelope = (ctx as Partial<DecodedContext>).envelope;
        if (envelope?.key === undefined) return;
        const { fault } = outcome;
        const record = this.#record(endpoint, envelope, 'dead-lettered', fault.attempts, {
          reason: fault.reason,
          detail: fault.description,
          lostTo: null,
        });
        this.#track(
          this.deps.store.transaction((tx) => this.deps.backend.write(tx, record)),
          { endpoint, messageId: envelope.id },
        );
      },
    };
  }

  #track(write: Promise<void>, fields: Record<string, string>): void {
    const tracked: Promise<void> = write
      .catch((error: unknown) =>
        this.deps.logger.warn({ err: error, ...fields }, 'history: the dead letter was not recorded'),
      )
      .finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }

  /** A group committer's `flush`: the members' rows in one statement, inside the group's transaction. */
  readonly flush = (tx: unknown, rows: readonly unknown[]): Promise<void> =>
    this.#own(this.deps.backend.writeMany(tx, rows as readonly HistoryRecord[]));

  /**
   * A history write that fails inside a message's transaction is Sluice's own store failing, never
   * the message's fault: a `DependencyError` (released, no attempt spent, the kill switch counts it),
   * so that a dropped table or a full disk cannot turn messages into dead letters.
   */
  async #own(write: Promise<void>): Promise<void> {
    try {
      await write;
    } catch (error) {
      if (error instanceof DependencyError) throw error;
      const dependency = `history (${this.deps.store.kind})`;
      throw new DependencyError(`${dependency}: ${error instanceof Error ? error.message : String(error)}`, {
        dependency,
        cause: error,
      });
    }
  }

  /** Waits for the dead-letter rows being written (the caller bounds the wait). */
  async drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  /** Deletes rows older than the retention, `cleanupBatchSize` per statement; returns how many. */
  async cleanup(): Promise<number> {
    const { retentionMs, cleanupBatchSize } = this.deps.config;
    const olderThan = new Date(this.deps.clock.now() - retentionMs);
    let total = 0;
    for (let round = 0; round < MAX_CLEANUP_ROUNDS; round++) {
      const deleted = await this.deps.store.transaction((tx) =>
        this.deps.backend.cleanup(tx, olderThan, cleanupBatchSize),
      );
      total += deleted;
      if (deleted < cleanupBatchSize) break;
    }
    return total;
  }

  #record(
    endpoint: string,
    envelope: Envelope,
    outcome: HistoryOutcome,
    attempts: number,
    why: Pick<HistoryRecord, 'reason' | 'detail' | 'lostTo'> = { reason: null, detail: null, lostTo: null },
  ): HistoryRecord {
    return {
      endpoint,
      key: envelope.key as string,
      messageId: envelope.id,
      messageType: envelope.type,
      occurredAt: envelope.occurredAt,
      tombstone: envelope.tombstone,
      recordedAt: new Date(this.deps.clock.now()),
      outcome,
      ...why,
      attempts,
      data: this.#dataOf(envelope),
    };
  }

  #dataOf(envelope: Envelope): string | null {
    const { data } = this.deps.config;
    if (!data.enabled || envelope.data === undefined) return null;
    const json = JSON.stringify(envelope.data);
    return json !== undefined && Buffer.byteLength(json) <= data.maxBytes ? json : null;
  }
}
