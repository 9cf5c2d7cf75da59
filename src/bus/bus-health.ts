import { JobRegistry } from '../admin/job-registry.js';
import { withAdmin } from '../admin/with-admin.js';
import { createHealthHandler } from '../health/health-handler.js';
import { type HealthServer, startHealthServer } from '../health/health-server.js';
import { createTokenAuthorizer, tokenDigest } from '../health/token-authorizer.js';
import type { KillSwitchView } from '../killswitch/kill-switch.js';
import type { OutboxView } from '../outbox/outbox-upkeep.js';
import { safeError } from '../telemetry/safe-error.js';
import type { BusParts, BusState } from './bus-parts.js';
import type { ConsumerView } from './consumer-supervisor.js';
import type { Endpoint, EndpointCounters, EndpointState } from './endpoint.js';
import type { WaitingFor } from './wait-for-inbox.js';

/** A point-in-time view of the bus for health checks and dashboards. */
export interface BusHealth {
  readonly state: BusState;
  /** While `start()` waits for a dependency (the inbox store): what, since when, and why it is not ready. */
  readonly waitingFor?: WaitingFor;
  readonly transport: { readonly kind: string; readonly state: string };
  readonly endpoints: Readonly<
    Record<
      string,
      {
        readonly state: EndpointState;
        readonly inFlight: number;
        readonly counters: EndpointCounters;
        readonly killSwitch: KillSwitchView;
        /** Consuming, or since when and why not (restarting after it stopped, reconnecting). */
        readonly consumer: ConsumerView;
      }
    >
  >;
  /** The outbox, when the bus has one: depth, age of the oldest waiting row, rows moved aside. */
  readonly outbox?: OutboxView;
}

/**
 * Starts the bus's health server; with a token and `health.admin.enabled`, the admin API and the
 * operator console share it (and the returned job registry runs their redrives and purges).
 */
export async function startBusHealth(
  bus: Parameters<typeof createHealthHandler>[0] & Parameters<typeof withAdmin>[0],
  parts: Pick<BusParts, 'config' | 'logger' | 'clock'>,
): Promise<{ readonly server: HealthServer; readonly jobs: JobRegistry | undefined }> {
  const { health } = parts.config;
  const logger = parts.logger.child({ component: 'health' });
  const authorizer = createTokenAuthorizer({
    admin: health.token ? tokenDigest(health.token) : undefined,
    read: health.readToken ? tokenDigest(health.readToken) : undefined,
  });
  let handler = createHealthHandler(bus, { ...health, authorizer, logger });
  let jobs: JobRegistry | undefined;
  // The operator console shares the server and its token model; it is on only with a token.
  if (health.admin.enabled && (authorizer.hasAdminToken || authorizer.hasReadToken)) {
    jobs = new JobRegistry({ clock: parts.clock, describeError: (e) => safeError(e).message });
    handler = withAdmin(bus, handler, {
      authorizer,
      jobs,
      basePath: health.basePath,
      scanLimit: health.admin.scanLimit,
      requestTimeoutMs: health.requestTimeoutMs,
      console: health.admin.console,
      logger: parts.logger.child({ component: 'admin' }),
    });
  }
  const server = await startHealthServer(handler, { ...health, logger });
  logger.info({ listening: server.url }, 'health server listening');
  return { server, jobs };
}

/** The bus's health view, from its parts at this moment. */
export function busHealth(of: {
  readonly state: BusState;
  readonly waitingFor: WaitingFor | undefined;
  readonly transport: { readonly kind: string; readonly state: string };
  readonly endpoints: ReadonlyMap<string, Endpoint>;
  readonly killSwitch: (endpoint: string) => { view(): KillSwitchView };
  readonly outbox: { view(): OutboxView } | undefined;
}): BusHealth {
  const endpoints: Record<string, BusHealth['endpoints'][string]> = {};
  for (const [name, e] of of.endpoints)
    endpoints[name] = {
      state: e.state,
      inFlight: e.inFlight,
      counters: { ...e.counters, skippedByReason: { ...e.counters.skippedByReason } },
      killSwitch: of.killSwitch(name).view(),
      consumer: e.consumer,
    };
  return {
    state: of.state,
    ...(of.waitingFor ? { waitingFor: of.waitingFor } : {}),
    transport: { kind: of.transport.kind, state: of.transport.state },
    endpoints,
    ...(of.outbox ? { outbox: of.outbox.view() } : {}),
  };
}
