import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { TransportError } from '../errors/sluice-error.js';
import { settleWithin } from '../internal/abort.js';
import { isRetryable } from '../retry/retry-policy.js';
import { sluiceTracer } from '../telemetry/otel.js';
import { Attr, OperationType } from '../telemetry/semantic.js';
import { producerContext } from '../telemetry/trace-context.js';
import type { OutgoingMessage, Transport } from '../transport-core/transport.js';
import { type OutboxConfig, type OutboxRow, type OutboxStore, outboxRetryDelayMs } from './outbox-store.js';

export interface OutboxDispatcherDeps {
  readonly store: OutboxStore<unknown>;
  readonly transport: Transport;
  readonly contentType: string;
  readonly config: OutboxConfig;
  readonly logger: Logger;
  /** A row could not go out for a reason of the broker's: the producing endpoint's kill switch counts it. */
  readonly onBrokerFailure: (sourceEndpoint: string | undefined, error: unknown) => void;
  /**
   * Whether the bus is stopping: then nothing is moved aside (a transport closing under a dispatch
   * says "closed, not retryable", which is about the transport, not the message).
   */
  readonly stopping: () => boolean;
}

/** What one dispatch round did. */
export interface DispatchResult {
  readonly dispatched: number;
  readonly movedAside: number;
  /** The shortest backoff of the rows given back (when any were). */
  readonly nextRetryInMs: number | undefined;
  /** The rows given back for another attempt (not confirmed, not moved aside), by `seq`. */
  readonly givenBack: ReadonlySet<number>;
}

/** Most rows one statement marks dispatched. */
const MARK_BATCH = 5_000;
/**
 * How long confirmed rows wait to be marked with the rows confirmed after them: one statement (and
 * one transaction) per this many milliseconds rather than per dispatch round. Marking sooner gains
 * nothing: a confirmed row is leased to its dispatcher, so no one sends it again meanwhile.
 */
export const MARK_LINGER_MS = 20;
/** Rows that are marked at once, without waiting for {@link MARK_LINGER_MS}. */
const MARK_AT_ONCE = 1_000;

/**
 * Hands claimed rows to the broker and records what became of them. Rows are sent concurrently
 * (a claim holds at most one row per key: the first undispatched one), each under a producer span
 * whose parent is the context the row was written with (its stored `traceparent`), each waiting at
 * most `dispatchTimeoutMs` for the broker's confirmation. Then, per row: confirmed → dispatched
 * (deleted at once when the retention is 0); refused for good (`InvalidOutgoingMessageError`, an
 * error that says it is not retryable, such as a broker's size limit) → moved aside with its reason;
 * anything else (broker down, timeout, a refusal that may pass) → tried again after a backoff on its
 * attempt count. A message keeps its id through every attempt.
 */
export class OutboxDispatcher {
  readonly #tracer = sluiceTracer();
  #toMark: number[] = [];
  #marking: Promise<void> | undefined;
  /** Set while confirmed rows wait {@link MARK_LINGER_MS} for more to mark with them. */
  #linger: NodeJS.Timeout | undefined;
  /** Rows ever handed to {@link #mark}, and rows whose statement ended (marked, or it failed). */
  #queued = 0;
  #settled = 0;

  constructor(private readonly deps: OutboxDispatcherDeps) {}

  /**
   * Resolves once every row confirmed so far is marked dispatched (the relay waits for it before
   * its next claim: a key's next row becomes claimable only then), marking the rows that wait for
   * the linger now. Rows confirmed after the call are not waited for.
   */
  async marked(): Promise<void> {
    const target = this.#queued;
    while (this.#settled < target) {
      this.#startMarking();
      await this.#marking;
    }
  }

  /**
   * Marks confirmed rows dispatched in the background: a delivery is settled once its rows are
   * confirmed, without waiting for this. The rows confirmed within {@link MARK_LINGER_MS} go in one
   * statement (and transaction) rather than one per dispatch round. If it fails (the database went
   * away after the broker confirmed), the rows stay leased and go out again after the lease, with
   * the same ids: downstream inboxes deduplicate them.
   */
  #mark(seqs: readonly number[]): void {
    if (seqs.length === 0) return;
    this.#toMark.push(...seqs);
    this.#queued += seqs.length;
    this.#lingerOrMark();
  }

  /** Marks now when enough rows wait, else once the linger ends; nothing while a statement runs. */
  #lingerOrMark(): void {
    if (this.#marking !== undefined || this.#toMark.length === 0) return;
    if (this.#toMark.length >= MARK_AT_ONCE) this.#startMarking();
    else this.#linger ??= setTimeout(() => this.#startMarking(), MARK_LINGER_MS);
  }

  #startMarking(): void {
    clearTimeout(this.#linger);
    this.#linger = undefined;
    this.#marking ??= this.#markBatch();
  }

  /** One statement for the waiting rows (up to {@link MARK_BATCH}); then the next, or a linger. */
  async #markBatch(): Promise<void> {
    const { store, config, logger } = this.deps;
    const batch = this.#toMark.splice(0, MARK_BATCH);
    try {
      await store.markDispatched(batch, config.retentionMs === 0);
    } catch (error) {
      logger.warn(
        { err: error, rows: batch.length },
        'outbox: marking rows dispatched failed; they go out again after their lease',
      );
    }
    this.#settled += batch.length;
    this.#marking = undefined;
    this.#lingerOrMark();
  }

  async dispatch(rows: readonly OutboxRow[]): Promise<DispatchResult> {
    const outcomes = await Promise.all(
      rows.map((row) =>
        this.#send(row).then(
          () => undefined,
          (e: unknown) => e,
        ),
      ),
    );
    const sent: number[] = [];
    const retry: { seq: number; attempts: number; delayMs: number }[] = [];
    const aside: { row: OutboxRow; reason: string }[] = [];
    outcomes.forEach((error, i) => {
      const row = rows[i] as OutboxRow;
      if (error === undefined) sent.push(row.seq);
      else if (isPermanent(error) && !this.deps.stopping()) aside.push({ row, reason: reasonOf(error) });
      else {
        const delayMs = outboxRetryDelayMs(row.attempts, this.deps.config.retryDelayMs);
        retry.push({ seq: row.seq, attempts: row.attempts, delayMs });
        this.deps.onBrokerFailure(row.sourceEndpoint, error);
      }
    });
    const { store, logger } = this.deps;
    this.#mark(sent);
    if (retry.length > 0) {
      logger.warn(
        { rows: retry.length, err: outcomes.find((e) => e !== undefined && !isPermanent(e)) },
        'outbox: the broker did not take rows; they stay and are tried again',
      );
      await store.retryAfter(retry);
    }
    for (const { row, reason } of aside) {
      logger.error(
        { seq: row.seq, messageId: row.messageId, messageType: row.messageType, reason },
        'outbox: the broker refused a message for good; moved aside',
      );
      await store.moveAside(row, reason);
    }
    return {
      dispatched: sent.length,
      movedAside: aside.length,
      nextRetryInMs: retry.length > 0 ? Math.min(...retry.map((r) => r.delayMs)) : undefined,
      givenBack: new Set(retry.map((r) => r.seq)),
    };
  }

  async #send(row: OutboxRow): Promise<void> {
    const { transport, contentType, config } = this.deps;
    const message: OutgoingMessage = {
      messageId: row.messageId,
      body: row.body,
      headers: row.headers,
      contentType,
      key: row.key,
      messageType: row.messageType,
    };
    const span = this.#tracer.startSpan(
      `${row.destinationKind} ${row.destination}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          [Attr.messagingSystem]: transport.kind,
          [Attr.destinationName]: row.destination,
          [Attr.operationType]: OperationType.send,
          [Attr.operationName]: row.destinationKind,
          [Attr.messageId]: row.messageId,
          [Attr.eventType]: row.messageType,
          [Attr.bodySize]: row.body.length,
          'sluice.outbox.attempt': row.attempts,
        },
      },
      producerContext(undefined, row.headers),
    );
    try {
      const sending =
        row.destinationKind === 'send' ? transport.send(row.destination, message) : transport.publish(message);
      // (A send that settles after the timeout is handled by settleWithin: never an unhandled rejection.)
      if ((await settleWithin(sending, config.dispatchTimeoutMs)) === 'timeout') {
        throw new TransportError(
          `the broker did not confirm within ${config.dispatchTimeoutMs} ms (outbox.dispatchTimeoutMs)`,
        );
      }
      await sending;
    } catch (error) {
      span.setAttribute(Attr.errorType, error instanceof Error ? error.name : '_OTHER');
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      span.end();
    }
  }
}

/**
 * Whether the broker (or the message) refuses for good: trying again cannot help. A `SluiceError`
 * says so with `retryable: false` (an `InvalidOutgoingMessageError`, a `TransportError` for a
 * message the broker can never take); so may another library's error (`retryable: false`).
 */
export function isPermanent(error: unknown): boolean {
  return !isRetryable(error) || (error as { retryable?: unknown } | undefined)?.retryable === false;
}

function reasonOf(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 2_000);
  return String(error).slice(0, 2_000);
}
