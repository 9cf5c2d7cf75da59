import type { Logger } from 'pino';
import type { InboxCommonConfig, InboxStore } from '../inbox/inbox-store.js';
import { MemoryInbox } from '../inbox/memory-inbox.js';
import type { Clock } from '../internal/clock.js';
import type { HistoryBackend } from './history-backend.js';
import type { HistoryConfig } from './history-config.js';
import { HistoryRuntime } from './history-runtime.js';
import { MemoryHistory } from './memory-history.js';
import { PostgresHistory } from './postgres-history.js';
import { SqliteHistory } from './sqlite-history.js';

/**
 * The bus's history beside its inbox store, in the store's dialect (memory, SQLite, PostgreSQL), or
 * `undefined` for a store of another kind or without `transaction` (then no endpoint keeps history,
 * and the bus logs why at start-up).
 */
export function createHistory(
  inbox: { readonly store: InboxStore<unknown>; readonly config: InboxCommonConfig },
  config: HistoryConfig,
  deps: { readonly clock: Clock; readonly logger: Logger; readonly outboxTable: string },
): HistoryRuntime | undefined {
  const { store } = inbox;
  const backend = backendOf(
    store,
    inbox.config as InboxCommonConfig & { schema?: string; table?: string; createTables?: boolean },
    config,
    deps.outboxTable,
  );
  if (!backend || !store.transaction) {
    if (config.enabled)
      deps.logger.warn(
        { inbox: store.kind },
        'history: this inbox store keeps no history (explain shows dead letters only)',
      );
    return undefined;
  }
  const transactional = store as InboxStore<unknown> & Required<Pick<InboxStore<unknown>, 'transaction'>>;
  return new HistoryRuntime({ store: transactional, backend, config, clock: deps.clock, logger: deps.logger });
}

function backendOf(
  store: InboxStore<unknown>,
  inboxConfig: { schema?: string; table?: string; createTables?: boolean },
  config: HistoryConfig,
  /** The outbox's table (`outbox.table`), read for "the messages it caused". */
  outboxTable: string,
): HistoryBackend | undefined {
  const inboxTable = inboxConfig.table ?? 'sluice_inbox';
  switch (store.kind) {
    case 'postgres':
      return new PostgresHistory({
        schema: inboxConfig.schema ?? 'public',
        table: config.table,
        inboxTable,
        outboxTable,
        createTables: inboxConfig.createTables !== false,
      });
    case 'sqlite':
      return new SqliteHistory({ table: config.table, inboxTable, outboxTable });
    case 'memory':
      return store instanceof MemoryInbox ? new MemoryHistory(store) : undefined;
    default:
      return undefined;
  }
}
