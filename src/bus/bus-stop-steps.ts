import type { HealthServer } from '../health/health-server.js';
import type { Outbox } from '../outbox/outbox.js';
import type { BusParts } from './bus-parts.js';
import type { CloseStep } from './close-within.js';
import type { Endpoint } from './endpoint.js';

/**
 * What `stop()` may take beyond `shutdown.timeoutMs`, whatever the broker and the database do:
 * pausing and closing the consumers, stopping the outbox's relay (dispatches in progress get a
 * moment), closing the transport, the inbox store (which closes the sockets of connections still in
 * use) and the health server, each within its own share.
 */
export const STOP_MARGIN_MS = 5_000;
const STOP_SHARES = { endpoints: 1_500, outbox: 800, transport: 800, inbox: 1_700, health: 200 } as const;

/**
 * The bus's shutdown, in order: the endpoints (handlers get `timeoutMs`), the outbox's relay, the
 * transport, the inbox store (after the dead letters' history rows being written) and the health
 * server: each step within its share of {@link STOP_MARGIN_MS}, so that a broker or database that
 * does not answer cannot hold the stop (run by `closeWithin`).
 */
export function busStopSteps(
  parts: Pick<BusParts, 'transport' | 'inbox' | 'history'>,
  running: {
    readonly endpoints: readonly Endpoint[];
    readonly outbox: Outbox | undefined;
    readonly healthServer: HealthServer | undefined;
  },
  timeoutMs: number,
): CloseStep[] {
  const { endpoints, outbox, healthServer } = running;
  return [
    {
      what: 'endpoints',
      close: () => Promise.all(endpoints.map((e) => e.stop(timeoutMs))),
      withinMs: timeoutMs + STOP_SHARES.endpoints,
    },
    // Before the transport: dispatches in progress may finish; what is left stays in the table.
    { what: 'outbox', close: () => outbox?.stop(), withinMs: STOP_SHARES.outbox },
    { what: 'transport', close: () => parts.transport.close(), withinMs: STOP_SHARES.transport },
    {
      what: 'inbox store',
      // The dead letters' history rows being written go first, within the same share.
      close: async () => {
        await parts.history?.drain();
        await parts.inbox?.store.close();
      },
      withinMs: STOP_SHARES.inbox,
    },
    { what: 'health server', close: () => healthServer?.close(), withinMs: STOP_SHARES.health },
  ];
}
