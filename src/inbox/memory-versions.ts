import type { Clock } from '../internal/clock.js';
import type { EntityVersion } from '../ordering/ordering-policy.js';

/** One `runOnce`/`runBatch` of the memory inbox: the key locks it holds and how to undo its version writes. */
export interface Scope {
  readonly held: Set<string>;
  readonly undo: (() => void)[];
  /** What the outbox makes visible when the run commits. */
  readonly commits: (() => void)[];
}

interface KeyLock {
  readonly scope: Scope;
  readonly released: Promise<void>;
  readonly release: () => void;
}

/**
 * The ordering guard's versions in memory, transactional with the memory inbox's runs: a write is
 * undone when its run's work throws, and a key read by a run stays locked until the run ends
 * ({@link release}). A run that already holds a key and would wait for another fails at once
 * instead (no deadlock; PostgreSQL would detect it and fail one of the two).
 */
export class MemoryVersions {
  readonly #versions = new Map<string, { readonly version: EntityVersion; readonly updatedAt: number }>();
  readonly #locks = new Map<string, KeyLock>();

  /** `current` is the run calling (it throws outside one); `clock` stamps the versions. */
  constructor(
    private readonly current: (what: string) => Scope,
    private readonly clock: Clock,
  ) {}

  async readVersion(_tx: undefined, endpoint: string, key: string): Promise<EntityVersion | undefined> {
    const scope = this.current('readVersion');
    const id = `${endpoint}\u0000${key}`;
    for (;;) {
      const lock = this.#locks.get(id);
      if (!lock || lock.scope === scope) break;
      if (scope.held.size > 0) {
        throw new Error(`memory inbox: key "${key}" is locked by another transaction while this one holds other keys`);
      }
      await lock.released;
    }
    if (!this.#locks.has(id)) {
      let release!: () => void;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      this.#locks.set(id, { scope, released, release });
      scope.held.add(id);
    }
    return this.#versions.get(id)?.version;
  }

  async writeVersion(
    _tx: undefined,
    endpoint: string,
    key: string,
    version: EntityVersion,
    first: boolean,
  ): Promise<boolean> {
    const scope = this.current('writeVersion');
    const id = `${endpoint}\u0000${key}`;
    const previous = this.#versions.get(id);
    if (first && previous) return false;
    scope.undo.push(() => {
      if (previous) this.#versions.set(id, previous);
      else this.#versions.delete(id);
    });
    this.#versions.set(id, { version, updatedAt: this.clock.now() });
    return true;
  }

  async cleanupTombstones(endpoint: string, olderThan: Date, limit: number): Promise<number> {
    let deleted = 0;
    const prefix = `${endpoint}\u0000`;
    for (const [id, { version, updatedAt }] of this.#versions) {
      if (deleted >= limit) break;
      if (id.startsWith(prefix) && version.tombstone && updatedAt < olderThan.getTime() && !this.#locks.has(id)) {
        this.#versions.delete(id);
        deleted++;
      }
    }
    return deleted;
  }

  /** Ends a run: the keys it locked are free again. */
  release(scope: Scope): void {
    for (const id of scope.held) {
      const lock = this.#locks.get(id);
      if (lock?.scope === scope) {
        this.#locks.delete(id);
        lock.release();
      }
    }
    scope.held.clear();
  }
}
