import type { Logger } from 'pino';
import type { z } from 'zod';
import { memoryTransport } from '../memory-transport/index.js';
import { cloudEventsCodec, type EnvelopeCodec } from '../envelope/cloudevents-codec.js';
import { ConfigError } from '../errors/sluice-error.js';
import { type Clock, systemClock } from '../internal/clock.js';
import type { PartitionKeyOf } from '../pipeline/delivery-pipeline.js';
import type { ErrorMatcher } from '../retry/retry-policy.js';
import { configSecrets, createRootLogger, withSafeErrors } from '../telemetry/logger.js';
import type { TransportDefinition } from '../transport-core/definition.js';
import type { InboxCommonConfig, InboxDefinition, InboxDeps, InboxStore } from '../inbox/inbox-store.js';
import { Bus, type BusParts } from './bus.js';
import { configErrorFrom } from './config-errors.js';
import {
  type BusConfigInput,
  BusConfigSchema,
  type EndpointConfigInput,
  EndpointConfigSchema,
} from './config-schema.js';
import type { EndpointRegistration } from './endpoint-builder.js';
import { isLoadedConfig, type LoadedConfig } from './load-config.js';
import { parseConfig } from './parse-config.js';
import { createHistory } from '../history/create-history.js';

/** Endpoint options in code: the config fields plus what only code can give. */
export interface EndpointOptions extends EndpointConfigInput {
  /** Picks the ordering key of a message (overrides `orderBy`). */
  partitionKey?: PartitionKeyOf;
  /**
   * Errors that mean a dependency failed, not the message, for every handler of the endpoint
   * (besides `DependencyError`, which always does); see `HandleOptions.dependencyErrors`.
   */
  dependencyErrors?: readonly ErrorMatcher[];
}

export interface BusOptions<TTx = undefined> {
  /**
   * The inbox store (exactly-once effects): `sqliteInbox()` from 'sluice/sqlite',
   * `postgresInbox()` from 'sluice/postgres', `memoryInbox()` for tests. Its settings come from
   * `config.inbox`; its transaction handle types `ctx.tx`.
   */
  inbox?: InboxDefinition<TTx, InboxCommonConfig & { kind: string }>;
  /** Extra transports by kind (`memory` is always available). */
  transports?: readonly TransportDefinition[];
  /**
   * Defaults to a pino logger at `logging.level`, secrets redacted. The bus logs through a child of
   * it whose `err` and `error` fields are serialized by `safeError` (see docs/observability.md).
   */
  logger?: Logger;
  /**
   * The time of everything on the message path: retry waits, the memory transport's lock timeouts
   * and delayed releases (when it makes its own broker), the kill switch, consumer restarts, batch
   * and group commit waits, ordering's future check, fault and inbox times, the `occurredAt` of what
   * the bus sends. Default: the system clock. `sluice/testing` gives a `ManualClock` (virtual time).
   */
  clock?: Clock;
  codec?: EnvelopeCodec;
}

const ENDPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/**
 * Validates the configuration and builds a bus. Nothing connects until `start()`. Throws
 * `ConfigError` naming every bad field (`transport.lockTimeoutMs: ...`, `endpoints.x.concurrency: ...`).
 *
 * @example
 * const bus = createBus({ service: 'billing', transport: { kind: 'memory' } });
 * const bus = createBus(loadConfig(), { transports: [rabbitmqTransport()] });
 */
export function createBus<TTx = undefined>(
  config: BusConfigInput | LoadedConfig = {},
  options: BusOptions<TTx> = {},
): Bus<TTx> {
  return new Bus<TTx>(assembleBus(config, options));
}

/**
 * What `createBus` validates and builds the bus from: the parsed config, the transport, the inbox
 * store, the logger. Throws `ConfigError` as `createBus` does. `sluice/testing` adds its observers
 * to the parts before it makes the bus.
 */
export function assembleBus<TTx>(config: BusConfigInput | LoadedConfig, options: BusOptions<TTx>): BusParts {
  const loaded = isLoadedConfig(config) ? config : { config, sources: new Map<string, string>() };
  const parsed = parseConfig(BusConfigSchema, loaded.config, loaded);
  if (!parsed.success) throw configErrorFrom(parsed.error, { schema: BusConfigSchema, sources: loaded.sources });
  const busConfig = parsed.data;
  for (const [name, fields] of Object.entries(busConfig.endpoints)) {
    const checked = parseConfig(EndpointConfigSchema, fields, loaded, `endpoints.${name}`);
    if (!checked.success) {
      throw configErrorFrom(checked.error, {
        prefix: `endpoints.${name}`,
        schema: EndpointConfigSchema,
        sources: loaded.sources,
      });
    }
  }

  const definitions = new Map<string, TransportDefinition>();
  for (const d of [memoryTransport() as TransportDefinition, ...(options.transports ?? [])]) definitions.set(d.kind, d);
  const definition = definitions.get(busConfig.transport.kind);
  if (!definition) {
    const known = [...definitions.keys()].join(', ');
    throw new ConfigError([
      `transport.kind: unknown transport "${busConfig.transport.kind}"; registered: ${known} ` +
        `(pass other transports to createBus, e.g. { transports: [rabbitmqTransport()] } from 'sluice/rabbitmq', ` +
        'or build the bus with createBusFromConfig(), which loads the configured kind)',
    ]);
  }
  const transportConfig = parseConfig(definition.configSchema, busConfig.transport, loaded, 'transport');
  if (!transportConfig.success) {
    throw configErrorFrom(transportConfig.error, {
      prefix: 'transport',
      schema: definition.configSchema as z.ZodType,
      sources: loaded.sources,
    });
  }

  // Every logger of the bus, the application's too, logs errors as safeError: credentials redacted,
  // the configured ones (the transport's secretFields, the inbox's connection string, the health
  // tokens, the retry signing key) wherever they appear.
  const known = [
    ...configSecrets(transportConfig.data, definition.secretFields ?? []),
    ...configSecrets(busConfig, ['inbox.connectionString', 'health.token', 'health.readToken', 'retrySigningKey']),
  ];
  const logger = withSafeErrors(options.logger ?? createRootLogger(busConfig.logging.level, busConfig.service), known);
  const clock = options.clock ?? systemClock;
  const inbox = resolveInbox(busConfig.inbox, options.inbox, loaded, {
    logger: logger.child({ inbox: true }),
    clock,
  });
  const transport = definition.create(transportConfig.data, {
    logger: logger.child({ transport: definition.kind }),
    clock,
  });

  const resolveEndpoint = (name: string, endpointOptions: EndpointOptions): EndpointRegistration => {
    if (!ENDPOINT_NAME.test(name)) {
      throw new ConfigError([
        `endpoint name "${name}": letters, digits and . _ - (at most 200), starting with a letter or digit`,
      ]);
    }
    const { partitionKey, dependencyErrors, ...fields } = endpointOptions;
    const merged = { ...fields, ...busConfig.endpoints[name] };
    const result = parseConfig(EndpointConfigSchema, merged, loaded, `endpoints.${name}`);
    if (!result.success) {
      throw configErrorFrom(result.error, {
        prefix: `endpoints.${name}`,
        schema: EndpointConfigSchema,
        sources: loaded.sources,
      });
    }
    return { name, config: result.data, routes: new Map(), partitionKey, dependencyErrors };
  };

  return {
    config: busConfig,
    transport,
    inbox,
    history: inbox
      ? createHistory(inbox, busConfig.history, {
          clock,
          logger: logger.child({ history: true }),
          outboxTable: busConfig.outbox.table,
        })
      : undefined,
    logger,
    clock,
    codec: options.codec ?? cloudEventsCodec,
    registrations: new Map(),
    resolveEndpoint: resolveEndpoint as (name: string, options: object) => EndpointRegistration,
  };
}

function resolveInbox<TTx>(
  section: { kind: string } | undefined,
  definition: InboxDefinition<TTx, InboxCommonConfig & { kind: string }> | undefined,
  loaded: Pick<LoadedConfig, 'sources' | 'raw'>,
  deps: InboxDeps,
): { store: InboxStore<unknown>; config: InboxCommonConfig } | undefined {
  if (!definition) {
    if (section) {
      throw new ConfigError([
        `inbox.kind: "${section.kind}" is configured but no inbox store was given to createBus ` +
          `(e.g. createBus(config, { inbox: ${section.kind}Inbox() }) from 'sluice/${section.kind}', ` +
          'or build the bus with createBusFromConfig(), which loads the configured kind)',
      ]);
    }
    return undefined;
  }
  const raw = section ?? { kind: definition.kind };
  if (raw.kind !== definition.kind) {
    throw new ConfigError([
      `inbox.kind: "${raw.kind}" does not match the inbox store given to createBus ("${definition.kind}")`,
    ]);
  }
  const parsed = parseConfig(definition.configSchema, raw, loaded, 'inbox');
  if (!parsed.success) {
    throw configErrorFrom(parsed.error, {
      prefix: 'inbox',
      schema: definition.configSchema as z.ZodType,
      sources: loaded.sources,
    });
  }
  return { store: definition.create(parsed.data, deps) as InboxStore<unknown>, config: parsed.data };
}
