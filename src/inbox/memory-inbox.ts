import { AsyncLocalStorage } from 'node:async_hooks';
import { z } from 'zod';
import { type Clock, systemClock } from '../internal/clock.js';
import type { EntityVersion } from '../ordering/ordering-policy.js';
import {
  type InboxDefinition,
  InboxCommonConfigShape,
  type InboxEntry,
  type InboxResult,
  type InboxRow,
  type InboxStore,
  type InboxWork,
} from './inbox-store.js';
import type { OutboxRow, OutboxStore, OutboxStoreOptions } from '../outbox/outbox-store.js';
import { MemoryOutbox } from './memory-outbox.js';
import { MemoryVersions, type Scope } from './memory-versions.js';

export const MemoryInboxConfigSchema = z.strictObject({ kind: z.literal('memory'), ...InboxCommonConfigShape });

/**
 * An inbox in process memory, for tests: the same deduplication guarantees within one process,
 * nothing durable. The transaction handle is `undefined`; the ordering guard's versions are
 * transactional all the same: a run's writes are undone when its work throws, and a key read by a
 * run stays locked until the run ends. A run that already holds a key and would wait for another
 * fails at once instead (no deadlock; PostgreSQL would detect it and fail one of the two).
 */
export class MemoryInbox implements InboxStore<undefined> {
  readonly kind = 'memory';
  readonly #rows = new Map<string, InboxRow>();
  readonly #running = new Map<string, Promise<unknown>>();
  readonly #scope = new AsyncLocalStorage<Scope>();
  readonly #versions: MemoryVersions;

  /** `clock` stamps rows and versions (the bus's: a manual clock's virtual time in tests). */
  constructor(private readonly clock: Clock = systemClock) {
    this.#versions = new MemoryVersions((what) => this.#current(what), clock);
  }

  async init(): Promise<void> {}

  async runOnce<R>(entry: InboxEntry, work: (tx: undefined) => Promise<InboxWork<R>>): Promise<InboxResult<R>> {
    const id = `${entry.endpoint}\u0000${entry.messageId}`;
    // A concurrent claim of the same id waits for the first, like a unique index does.
    while (this.#running.has(id)) await this.#running.get(id)?.catch(() => {});
    if (this.#rows.has(id)) {
      await entry.duplicate?.(undefined);
      return { status: 'duplicate' };
    }
    const scope: Scope = { held: new Set(), undo: [], commits: [] };
    const run = this.#scope.run(scope, () => work(undefined));
    this.#running.set(id, run);
    try {
      const done = await run;
      this.#rows.set(id, this.#row(entry, done.recordAs));
      for (const commit of scope.commits) commit();
      return { status: 'processed', value: done.result };
    } catch (error) {
      this.#undo(scope, 0);
      throw error;
    } finally {
      this.#running.delete(id);
      this.#release(scope);
    }
  }

  async runBatch<R>(
    entries: readonly InboxEntry[],
    work: (tx: undefined, fresh: readonly boolean[]) => Promise<readonly (InboxWork<R> | undefined)[]>,
  ): Promise<InboxResult<R>[]> {
    const ids = [...new Set(entries.map((e) => `${e.endpoint}\u0000${e.messageId}`))];
    // Like a unique index: wait for other claims of the same ids, then hold them ourselves.
    for (;;) {
      const busy = ids.find((id) => this.#running.has(id));
      if (busy === undefined) break;
      await this.#running.get(busy)?.catch(() => {});
    }
    let finished!: () => void;
    const holding = new Promise<void>((resolve) => {
      finished = resolve;
    });
    for (const id of ids) this.#running.set(id, holding);
    try {
      return await this.#runBatchHeld(entries, work);
    } finally {
      for (const id of ids) if (this.#running.get(id) === holding) this.#running.delete(id);
      finished();
    }
  }

  async #runBatchHeld<R>(
    entries: readonly InboxEntry[],
    work: (tx: undefined, fresh: readonly boolean[]) => Promise<readonly (InboxWork<R> | undefined)[]>,
  ): Promise<InboxResult<R>[]> {
    const seen = new Set<string>();
    const fresh = entries.map((e) => {
      const id = `${e.endpoint}\u0000${e.messageId}`;
      const isNew = !this.#rows.has(id) && !seen.has(id);
      seen.add(id);
      return isNew;
    });
    const scope: Scope = { held: new Set(), undo: [], commits: [] };
    let done: readonly (InboxWork<R> | undefined)[];
    try {
      done = await this.#scope.run(scope, () => work(undefined, fresh));
    } catch (error) {
      this.#undo(scope, 0);
      throw error;
    } finally {
      this.#release(scope);
    }
    for (const commit of scope.commits) commit();
    return entries.map((entry, i) => {
      const d = done[i];
      if (!fresh[i] || !d) return { status: 'duplicate' } as const;
      this.#rows.set(`${entry.endpoint}\u0000${entry.messageId}`, this.#row(entry, d.recordAs));
      return { status: 'processed', value: d.result } as const;
    });
  }

  /** One run without a claim (`bus.transaction`): its outbox rows and versions commit or roll back together. */
  async transaction<R>(work: (tx: undefined) => Promise<R>): Promise<R> {
    const scope: Scope = { held: new Set(), undo: [], commits: [] };
    try {
      const result = await this.#scope.run(scope, () => work(undefined));
      for (const commit of scope.commits) commit();
      return result;
    } catch (error) {
      this.#undo(scope, 0);
      throw error;
    } finally {
      this.#release(scope);
    }
  }

  /** Registers how to take back a write made inside the current run (rolled back with it); outside a run, nothing. */
  track(undo: () => void): void {
    this.#scope.getStore()?.undo.push(undo);
  }

  /** The outbox in memory, transactional with this inbox's runs (see `MemoryOutbox`). */
  outbox(_options: OutboxStoreOptions): OutboxStore<undefined> {
    this.#outbox ??= new MemoryOutbox({
      clock: this.clock,
      inTransaction: (undo, commit) => {
        const scope = this.#current('outbox write');
        scope.undo.push(undo);
        scope.commits.push(commit);
      },
    });
    return this.#outbox;
  }

  #outbox: MemoryOutbox | undefined;

  /** The outbox's committed rows, if a bus made it (the history's "what it caused"). */
  outboxRows(): readonly OutboxRow[] {
    return this.#outbox?.committedRows() ?? [];
  }

  async withSavepoint<R>(_tx: undefined, fn: () => Promise<R>): Promise<R> {
    const scope = this.#scope.getStore();
    const mark = scope?.undo.length ?? 0;
    try {
      return await fn();
    } catch (error) {
      if (scope) this.#undo(scope, mark);
      throw error;
    }
  }

  readVersion(_tx: undefined, endpoint: string, key: string): Promise<EntityVersion | undefined> {
    return this.#versions.readVersion(_tx, endpoint, key);
  }

  writeVersion(
    _tx: undefined,
    endpoint: string,
    key: string,
    version: EntityVersion,
    first: boolean,
  ): Promise<boolean> {
    return this.#versions.writeVersion(_tx, endpoint, key, version, first);
  }

  cleanupTombstones(endpoint: string, olderThan: Date, limit: number): Promise<number> {
    return this.#versions.cleanupTombstones(endpoint, olderThan, limit);
  }

  #current(what: string): Scope {
    const scope = this.#scope.getStore();
    if (!scope) throw new Error(`memory inbox: ${what} must be called inside runOnce or runBatch`);
    return scope;
  }

  #undo(scope: Scope, mark: number): void {
    while (scope.undo.length > mark) scope.undo.pop()?.();
  }

  #release(scope: Scope): void {
    this.#versions.release(scope);
  }

  #row(entry: InboxEntry, recordAs: string | undefined): InboxRow {
    return {
      endpoint: entry.endpoint,
      messageId: entry.messageId,
      messageType: entry.messageType,
      key: entry.key ?? null,
      occurredAt: entry.occurredAt,
      receivedAt: entry.receivedAt,
      processedAt: new Date(this.clock.now()),
      outcome: recordAs ?? 'completed',
      attempts: entry.attempts,
      envelope: entry.envelopeJson === undefined ? null : JSON.parse(entry.envelopeJson),
    };
  }

  async cleanup(olderThan: Date, limit: number): Promise<number> {
    let deleted = 0;
    for (const [id, row] of this.#rows) {
      if (deleted >= limit) break;
      if (row.processedAt < olderThan) {
        this.#rows.delete(id);
        deleted++;
      }
    }
    return deleted;
  }

  async find(endpoint: string, messageId: string): Promise<InboxRow | undefined> {
    return this.#rows.get(`${endpoint}\u0000${messageId}`);
  }

  async close(): Promise<void> {}
}

/** The memory inbox definition: `createBus(config, { inbox: memoryInbox() })`. */
export function memoryInbox(): InboxDefinition<undefined, z.infer<typeof MemoryInboxConfigSchema>> {
  return {
    kind: 'memory',
    configSchema: MemoryInboxConfigSchema,
    create: (_config, deps) => new MemoryInbox(deps.clock),
  };
}
