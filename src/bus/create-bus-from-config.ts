import { ConfigError } from '../errors/sluice-error.js';
import type { InboxCommonConfig, InboxDefinition } from '../inbox/inbox-store.js';
import type { TransportDefinition } from '../transport-core/definition.js';
import type { Bus } from './bus.js';
import type { BusConfigInput } from './config-schema.js';
import { type BusOptions, createBus } from './create-bus.js';
import { isLoadedConfig, type LoadedConfig, loadConfig } from './load-config.js';

type AnyInbox = InboxDefinition<unknown, InboxCommonConfig & { kind: string }>;

/**
 * A plug-in Sluice can load by its `kind`: the module to import (the same code as the package's
 * subpath export), the factory it exports, and the optional peer dependencies the module imports, so
 * that a missing one is named in the error.
 */
interface Plugin<T> {
  readonly subpath: string;
  readonly peers: readonly string[];
  readonly load: () => Promise<() => T>;
}

// Relative imports, not `sluice/<kind>`: they resolve the same way from the sources (tests, tsx) and
// from the compiled package, and a bundler sees them. Each is loaded only when its kind is configured.
const TRANSPORTS: Readonly<Record<string, Plugin<TransportDefinition>>> = {
  rabbitmq: {
    subpath: 'sluice/rabbitmq',
    peers: ['amqplib'],
    load: async () =>
      (await import('../../transports/rabbitmq/index.js')).rabbitmqTransport as () => TransportDefinition,
  },
  kafka: {
    subpath: 'sluice/kafka',
    peers: ['kafkajs', 'long'],
    load: async () => (await import('../../transports/kafka/index.js')).kafkaTransport as () => TransportDefinition,
  },
  servicebus: {
    subpath: 'sluice/servicebus',
    peers: ['@azure/service-bus'],
    load: async () =>
      (await import('../../transports/servicebus/index.js')).serviceBusTransport as () => TransportDefinition,
  },
};

const INBOXES: Readonly<Record<string, Plugin<AnyInbox>>> = {
  memory: {
    subpath: 'sluice',
    peers: [],
    load: async () => (await import('../inbox/memory-inbox.js')).memoryInbox as unknown as () => AnyInbox,
  },
  sqlite: {
    subpath: 'sluice/sqlite',
    peers: ['better-sqlite3'],
    load: async () => (await import('../inbox/sqlite/index.js')).sqliteInbox as unknown as () => AnyInbox,
  },
  postgres: {
    subpath: 'sluice/postgres',
    peers: ['pg'],
    load: async () => (await import('../inbox/postgres/index.js')).postgresInbox as unknown as () => AnyInbox,
  },
};

/**
 * Builds a bus from configuration alone: the transport named by `transport.kind` and the inbox store
 * named by `inbox.kind` are loaded on demand, so a service switches broker and store with
 * `SLUICE_TRANSPORT__KIND=rabbitmq` / `SLUICE_INBOX__KIND=postgres` and no code change. Only the
 * configured kinds are imported, so only their client libraries (optional peer dependencies) need to
 * be installed.
 *
 * Definitions given in `options` win over loading (a customised `rabbitmqTransport({ overrides })`).
 * `createBus(config, { transports, inbox })` stays the explicit form, for bundlers and for a typed
 * `ctx.tx`: here the transaction handle is typed by the caller (`createBusFromConfig<PostgresTransaction>()`).
 *
 * Throws `ConfigError` (at once, before anything connects) for an unknown kind, naming the kinds it
 * knows, and for a kind whose client library is not installed, naming the package to install;
 * otherwise whatever `createBus` throws.
 *
 * @example
 * // SLUICE_TRANSPORT__KIND=rabbitmq SLUICE_TRANSPORT__URL=amqp://... SLUICE_INBOX__KIND=sqlite
 * const bus = await createBusFromConfig();
 */
export async function createBusFromConfig<TTx = unknown>(
  config: BusConfigInput | LoadedConfig = loadConfig(),
  options: BusOptions<TTx> = {},
): Promise<Bus<TTx>> {
  const raw = (isLoadedConfig(config) ? config.config : config) as { transport?: unknown; inbox?: unknown };
  const transportKind = kindOf(raw.transport) ?? 'memory';
  const inboxKind = kindOf(raw.inbox);
  const transports = [...(options.transports ?? [])];
  if (transportKind !== 'memory' && !transports.some((d) => d.kind === transportKind)) {
    const plugin = TRANSPORTS[transportKind];
    if (!plugin) {
      throw new ConfigError([
        `transport.kind: unknown transport "${transportKind}"; known: memory, ${Object.keys(TRANSPORTS).join(', ')}`,
      ]);
    }
    transports.push((await loadPlugin(plugin, 'transport', transportKind))());
  }
  let inbox = options.inbox as AnyInbox | undefined;
  if (inboxKind !== undefined && inbox === undefined) {
    const plugin = INBOXES[inboxKind];
    if (!plugin) {
      throw new ConfigError([
        `inbox.kind: unknown inbox store "${inboxKind}"; known: ${Object.keys(INBOXES).join(', ')}`,
      ]);
    }
    inbox = (await loadPlugin(plugin, 'inbox', inboxKind))();
  }
  return createBus<TTx>(config, {
    ...options,
    transports,
    inbox: inbox as BusOptions<TTx>['inbox'],
  });
}

async function loadPlugin<T>(plugin: Plugin<T>, field: string, kind: string): Promise<() => T> {
  try {
    return await plugin.load();
  } catch (error) {
    const missing = missingPackage(error, plugin.peers);
    if (missing === undefined) throw error;
    throw new ConfigError([
      `${field}.kind: "${kind}" needs the package "${missing}" (an optional peer dependency of ${plugin.subpath}), ` +
        `which is not installed: npm install ${missing}`,
    ]);
  }
}

/** The peer package a failed import could not find, if that is why it failed. */
function missingPackage(error: unknown, peers: readonly string[]): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return undefined;
  const message = error instanceof Error ? error.message : '';
  return peers.find((peer) => message.includes(`'${peer}'`) || message.includes(`"${peer}"`));
}

function kindOf(section: unknown): string | undefined {
  if (typeof section !== 'object' || section === null) return undefined;
  const kind = (section as { kind?: unknown }).kind;
  return typeof kind === 'string' && kind.length > 0 ? kind : undefined;
}
