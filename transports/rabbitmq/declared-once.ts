import type { ChannelModel } from 'amqplib';
import type { Clock } from '../../src/transport-core/index.js';

interface Entry {
  readonly promise: Promise<void>;
  readonly at: number;
}

/**
 * Broker objects (exchanges, delay queues) declared on a connection, each name once: concurrent
 * callers share the declaration in progress, later callers find it done. A failed declaration is
 * forgotten, so the next caller tries again. Each connection has its own record (a broker restart
 * may have lost what the old connection declared), and an entry older than `maxAgeMs` is declared
 * again (renewing a delay queue's `x-expires` lease).
 */
export class DeclaredOnce {
  readonly #byConnection = new WeakMap<ChannelModel, Map<string, Entry>>();

  constructor(
    private readonly clock: Clock,
    private readonly maxAgeMs = Number.POSITIVE_INFINITY,
  ) {}

  #entries(model: ChannelModel): Map<string, Entry> {
    let entries = this.#byConnection.get(model);
    if (!entries) {
      entries = new Map();
      this.#byConnection.set(model, entries);
    }
    return entries;
  }

  /** Resolves once `name` is declared on `model`, running `declare` only if no one has (recently). */
  run(model: ChannelModel, name: string, declare: () => Promise<void>): Promise<void> {
    const entries = this.#entries(model);
    const now = this.clock.now();
    const existing = entries.get(name);
    if (existing && now - existing.at < this.maxAgeMs) return existing.promise;
    const entry: Entry = { promise: declare(), at: now };
    entries.set(name, entry);
    entry.promise.catch(() => {
      if (entries.get(name) === entry) entries.delete(name);
    });
    return entry.promise;
  }

  /** Records `name` as declared on `model` (declared by other code, e.g. with an endpoint). */
  declared(model: ChannelModel, name: string): void {
    this.#entries(model).set(name, { promise: Promise.resolve(), at: this.clock.now() });
  }
}
