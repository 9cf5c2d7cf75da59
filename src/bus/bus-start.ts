import { RegistrationError } from '../errors/sluice-error.js';
import type { Outbox } from '../outbox/outbox.js';
import { type ObservedBus, observeBus } from './bus-metrics.js';
import { anyHistory } from './bus-history.js';
import type { BusParts } from './bus-parts.js';
import type { Endpoint } from './endpoint.js';
import type { EndpointRegistration } from './endpoint-builder.js';
import { topologyOf } from './endpoint-topology.js';
import { scheduleInboxCleanup } from './inbox-cleanup.js';
import { installSignalHandlers } from './signal-handlers.js';
import { type WaitingFor, waitForInbox } from './wait-for-inbox.js';

/** Throws when the configuration names an endpoint that the code does not declare. */
export function assertConfiguredDeclared(parts: Pick<BusParts, 'config' | 'registrations'>): void {
  for (const name of Object.keys(parts.config.endpoints)) {
    if (!parts.registrations.has(name)) {
      const known = [...parts.registrations.keys()].join(', ') || '(none)';
      throw new RegistrationError(
        `endpoints.${name}: configured, but no endpoint "${name}" is declared in code; declared: ${known}`,
      );
    }
  }
}

export interface Opening {
  /** Aborted by `stop()` during `start()`: ends the wait for the inbox store. */
  readonly signal: AbortSignal;
  readonly onWaiting: (waiting: WaitingFor | undefined) => void;
  readonly outbox: Outbox | undefined;
  /** Where the endpoints go as they are made (a failure part-way closes those made). */
  readonly endpoints: Map<string, Endpoint>;
  readonly build: (registration: EndpointRegistration) => Endpoint;
}

/**
 * `start()`'s sequence after the health server: waits for the inbox store (and creates the
 * history's table when an endpoint keeps history), connects, starts the outbox (its table, then its
 * relay: rows a crash left behind go out before new work comes in), declares every endpoint's
 * topology, then makes and starts each endpoint.
 */
export async function openBus(parts: BusParts, opening: Opening): Promise<void> {
  const { transport, logger } = parts;
  if (parts.inbox) {
    await waitForInbox(parts.inbox, { logger, signal: opening.signal, onWaiting: opening.onWaiting });
    // The history's table, when an endpoint keeps history (off by default).
    if (anyHistory(parts)) await parts.history?.init();
  }
  await transport.connect();
  await opening.outbox?.start();
  for (const registration of parts.registrations.values()) {
    if (registration.routes.size === 0) {
      throw new RegistrationError(`endpoint "${registration.name}" has no handlers`);
    }
    await transport.declare(topologyOf(registration));
  }
  for (const registration of parts.registrations.values()) {
    const endpoint = opening.build(registration);
    opening.endpoints.set(registration.name, endpoint);
    await endpoint.start(transport);
  }
}

/**
 * What a started bus runs besides its endpoints: stop on signals, a handle that keeps the process
 * alive (a started bus is a server, whatever the transport: the memory transport holds no socket,
 * and its timers do not keep a process alive), the inbox cleanup and the bus's metrics. Returns the
 * function that ends them all.
 */
export function runWhileStarted(
  parts: BusParts,
  bus: ObservedBus & { stop(): Promise<void>; cleanupInbox(): Promise<number>; readonly state: string },
): () => void {
  const removeSignalHandlers = installSignalHandlers(parts.config.shutdown.signals, () => bus.stop(), parts.logger);
  const keepAlive = setInterval(() => {}, 2 ** 31 - 1);
  const cancelCleanup = scheduleInboxCleanup(
    parts,
    () => bus.cleanupInbox(),
    () => bus.state === 'started',
  );
  const unobserve = observeBus(parts.transport.kind, bus);
  return () => {
    removeSignalHandlers();
    clearInterval(keepAlive);
    cancelCleanup?.();
    unobserve();
  };
}
