import type { EnvelopeCodec } from '../envelope/cloudevents-codec.js';
import type { DeadLetterQueue } from '../transport-core/dead-letter-queue.js';
import { describeEntry, redriveHint } from './describe-entry.js';
import type { Consumed } from './history-backend.js';
import type { CausedMessage, HistoryOutcome, LostTo, StoredHistoryRecord } from './history-record.js';
import type { HistoryRuntime } from './history-runtime.js';

/** What `bus.explain` looks at. */
export interface ExplainOptions {
  /** Only this endpoint (default: every endpoint of the bus). */
  readonly endpoint?: string;
  /** The newest `limit` entries (default 100, at most 1000), shown oldest first. */
  readonly limit?: number;
  /** Only entries recorded at or after this time. */
  readonly since?: Date;
}

/** One step of a key's timeline. */
export interface ExplainEntry {
  /** The row's place in the history; `null` for a dead letter found only in the queue. */
  readonly seq: number | null;
  readonly endpoint: string;
  readonly messageId: string;
  readonly messageType: string;
  readonly key: string;
  /** As the producer sent it. */
  readonly occurredAt: string;
  /** When the outcome was recorded (ISO 8601); for a dead letter found only in the queue, its last failure. */
  readonly recordedAt: string;
  readonly outcome: HistoryOutcome;
  readonly reason: string | null;
  readonly detail: string | null;
  /** The last applied event a stale or tombstoned one lost to. */
  readonly lostTo: LostTo | null;
  readonly attempts: number;
  readonly tombstone: boolean;
  /** The event's data as JSON text, when the history keeps it. */
  readonly data: string | null;
  /** What it caused (the outbox's rows with this message as cause, on this endpoint). */
  readonly caused: readonly CausedMessage[];
  /** A dead letter that is still in the endpoint's dead-letter queue. */
  readonly inDeadLetterQueue: boolean;
  /** The entry in plain words. */
  readonly summary: string;
  /** What to do (a redrive for a dead letter still in the queue), or null. */
  readonly hint: string | null;
}

/** The ordering guard's current state of the key on one endpoint. */
export interface GuardState {
  readonly endpoint: string;
  /** Whether the endpoint keeps history. */
  readonly history: boolean;
  /** The last applied event (a tombstone: the entity is deleted); null: none recorded (or expired). */
  readonly lastApplied: LostTo | null;
}

/** How far the dead-letter queues were looked at. */
export interface DeadLetterScan {
  readonly endpoint: string;
  readonly scanned: number;
  /** The scan stopped at `history.deadLetterScanLimit`. */
  readonly truncated: boolean;
  /** The queue could not be read (the broker did not answer): its dead letters are not shown. */
  readonly error?: string;
}

/** `bus.explain(key)`: why the entity is in its state. */
export interface Explanation {
  readonly key: string;
  readonly guard: readonly GuardState[];
  readonly entries: readonly ExplainEntry[];
  readonly deadLetters: readonly DeadLetterScan[];
}

/** `bus.explainMessage(id)`: where one message went, on every endpoint of the bus. */
export interface MessageExplanation {
  readonly messageId: string;
  readonly entries: readonly ExplainEntry[];
  readonly deadLetters: readonly DeadLetterScan[];
}

export interface ExplainSources {
  /** The bus's history; undefined without an inbox (then only dead-letter queues are read). */
  readonly history: HistoryRuntime | undefined;
  /** The endpoints looked at, and whether each keeps history. */
  readonly endpoints: readonly { readonly name: string; readonly history: boolean }[];
  readonly deadLetters: (endpoint: string) => DeadLetterQueue;
  readonly codec: EnvelopeCodec;
  readonly scanLimit: number;
  readonly describeError: (error: unknown) => string;
}

export const DEFAULT_EXPLAIN_LIMIT = 100;
export const MAX_EXPLAIN_LIMIT = 1_000;

interface Found {
  readonly endpoint: string;
  readonly messageId: string;
  readonly messageType: string;
  readonly key: string;
  readonly occurredAt: string;
  readonly tombstone: boolean;
  readonly reason: string | null;
  readonly detail: string | null;
  readonly attempts: number;
  readonly failedAt: string;
}

/** Builds a key's timeline: history rows, the guard's state, the dead letters still in the queues. */
export async function explainKey(
  sources: ExplainSources,
  key: string,
  options: ExplainOptions = {},
): Promise<Explanation> {
  const limit = Math.min(options.limit ?? DEFAULT_EXPLAIN_LIMIT, MAX_EXPLAIN_LIMIT);
  const recording = sources.endpoints.filter((e) => e.history).map((e) => e.name);
  const { history } = sources;
  const read = history
    ? await history.read(async (backend, tx) => {
        const rows =
          recording.length === 0
            ? []
            : await backend.read(tx, {
                key,
                endpoints: recording,
                limit,
                ...(options.since ? { since: options.since } : {}),
              });
        const guard: GuardState[] = [];
        for (const e of sources.endpoints) {
          guard.push({
            endpoint: e.name,
            history: e.history,
            lastApplied: (await backend.lastApplied(tx, e.name, key)) ?? null,
          });
        }
        const caused = await backend.caused(tx, consumedOf(rows));
        return { rows, guard, caused };
      })
    : {
        rows: [],
        guard: sources.endpoints.map((e) => ({ endpoint: e.name, history: false, lastApplied: null })),
        caused: [],
      };
  const scan = await scanDeadLetters(sources, (f) => f.key === key);
  return { key, guard: read.guard, entries: timeline(read.rows, read.caused, scan.found), deadLetters: scan.scans };
}

/** Where one message went: its rows on every endpoint, and where it is still dead-lettered. */
export async function explainMessage(sources: ExplainSources, messageId: string): Promise<MessageExplanation> {
  const recording = sources.endpoints.filter((e) => e.history).map((e) => e.name);
  const read =
    sources.history && recording.length > 0
      ? await sources.history.read(async (backend, tx) => {
          const rows = await backend.read(tx, { messageId, endpoints: recording, limit: MAX_EXPLAIN_LIMIT });
          return { rows, caused: await backend.caused(tx, consumedOf(rows)) };
        })
      : { rows: [], caused: [] };
  const scan = await scanDeadLetters(sources, (f) => f.messageId === messageId);
  return { messageId, entries: timeline(read.rows, read.caused, scan.found), deadLetters: scan.scans };
}

function consumedOf(rows: readonly StoredHistoryRecord[]): Consumed[] {
  const seen = new Map<string, Consumed>();
  for (const r of rows) {
    if (r.outcome === 'applied')
      seen.set(`${r.endpoint}\u0000${r.messageId}`, { endpoint: r.endpoint, messageId: r.messageId });
  }
  return [...seen.values()];
}

/** The rows as entries; dead letters still queued mark their row, or are added when no row has them. */
function timeline(
  rows: readonly StoredHistoryRecord[],
  caused: readonly CausedMessage[],
  found: readonly Found[],
): ExplainEntry[] {
  const queued = new Map(found.map((f) => [`${f.endpoint}\u0000${f.messageId}`, f]));
  // The last dead-lettered row of a message is the one still in the queue.
  const lastDead = new Map<string, StoredHistoryRecord>();
  for (const r of rows) if (r.outcome === 'dead-lettered') lastDead.set(`${r.endpoint}\u0000${r.messageId}`, r);
  const entries: ExplainEntry[] = rows.map((r) => {
    const id = `${r.endpoint}\u0000${r.messageId}`;
    const inQueue = lastDead.get(id) === r && queued.has(id);
    if (inQueue) queued.delete(id);
    return entryOf(
      { ...r, recordedAt: r.recordedAt.toISOString() },
      r.seq,
      caused.filter((c) => c.sourceEndpoint === r.endpoint && c.causationId === r.messageId && r.outcome === 'applied'),
      inQueue,
    );
  });
  const extra = [...queued.values()].sort((a, b) => (a.failedAt < b.failedAt ? -1 : a.failedAt > b.failedAt ? 1 : 0));
  for (const f of extra) {
    entries.push(
      entryOf({ ...f, recordedAt: f.failedAt, outcome: 'dead-lettered', lostTo: null, data: null }, null, [], true),
    );
  }
  return entries;
}

function entryOf(
  r: Omit<ExplainEntry, 'seq' | 'caused' | 'inDeadLetterQueue' | 'summary' | 'hint'>,
  seq: number | null,
  caused: readonly CausedMessage[],
  inDeadLetterQueue: boolean,
): ExplainEntry {
  return {
    seq,
    endpoint: r.endpoint,
    messageId: r.messageId,
    messageType: r.messageType,
    key: r.key,
    occurredAt: r.occurredAt,
    recordedAt: r.recordedAt,
    outcome: r.outcome,
    reason: r.reason,
    detail: r.detail,
    lostTo: r.lostTo,
    attempts: r.attempts,
    tombstone: r.tombstone,
    data: r.data,
    caused,
    inDeadLetterQueue,
    summary: describeEntry({ ...r, inDeadLetterQueue }),
    hint: inDeadLetterQueue ? redriveHint(r.messageId, r.reason) : null,
  };
}

/** Reads each endpoint's dead-letter queue, oldest first, up to the scan limit; keeps the matches. */
async function scanDeadLetters(
  sources: ExplainSources,
  matches: (f: Found) => boolean,
): Promise<{ found: Found[]; scans: DeadLetterScan[] }> {
  const found: Found[] = [];
  const scans: DeadLetterScan[] = [];
  for (const { name } of sources.endpoints) {
    let scanned = 0;
    try {
      if (sources.scanLimit > 0) {
        for await (const page of sources.deadLetters(name).scan({ max: sources.scanLimit, pageSize: 200 })) {
          for (const dead of page) {
            scanned++;
            const decoded = sources.codec.decode(dead.body);
            if (!decoded.ok || decoded.envelope.key === undefined) continue;
            const { envelope } = decoded;
            const f: Found = {
              endpoint: name,
              messageId: envelope.id,
              messageType: envelope.type,
              key: envelope.key as string,
              occurredAt: envelope.occurredAt,
              tombstone: envelope.tombstone,
              reason: dead.fault?.reason ?? null,
              detail: dead.fault?.description ?? null,
              attempts: dead.fault?.attempts ?? 0,
              failedAt: dead.fault?.lastFailureAt ?? '',
            };
            if (matches(f)) found.push(f);
          }
        }
      }
      scans.push({ endpoint: name, scanned, truncated: scanned >= sources.scanLimit });
    } catch (error) {
      scans.push({ endpoint: name, scanned, truncated: false, error: sources.describeError(error) });
    }
  }
  return { found, scans };
}
