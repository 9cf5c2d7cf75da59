import type { Bus } from '../bus/bus.js';
import type { MemoryBroker } from '../memory-transport/memory-broker.js';

/**
 * What keeps the buses of a harness from being at rest, one line per item: deliveries in flight,
 * consumers restarting, messages released for later, messages ready for a consumer that takes them
 * or waiting for a kill switch that restarts on its own. Empty: at rest. Messages on an address no
 * endpoint consumes (another service's queue) are not pending, nor those held by a kill switch an
 * operator tripped (`trip()`): nothing but a `reset()` moves them.
 */
export function pendingWork(buses: readonly Bus<unknown>[], broker: MemoryBroker): string[] {
  const lines: string[] = [];
  const switches = new Map<string, { state: string; manual: boolean; restartAt?: string | undefined }[]>();
  buses.forEach((bus, instance) => {
    const at = buses.length > 1 ? ` (instance ${instance})` : '';
    for (const [name, endpoint] of Object.entries(bus.health().endpoints)) {
      if (endpoint.inFlight > 0) lines.push(`endpoint "${name}"${at}: ${endpoint.inFlight} deliveries in flight`);
      if (endpoint.consumer.state === 'restarting') lines.push(`endpoint "${name}"${at}: its consumer is restarting`);
      const address = bus.endpointSettings(name).address ?? name;
      const views = switches.get(address) ?? [];
      views.push(endpoint.killSwitch);
      switches.set(address, views);
    }
  });
  for (const [address, views] of switches) {
    const queue = broker.queue(address);
    if (queue.delayedCount > 0) lines.push(`queue "${address}": ${queue.delayedCount} messages released for later`);
    if (queue.readyCount === 0) continue;
    if (views.some((v) => v.state !== 'tripped')) {
      lines.push(`queue "${address}": ${queue.readyCount} messages ready`);
    } else {
      const restarting = views.find((v) => !v.manual);
      if (restarting) {
        lines.push(
          `queue "${address}": ${queue.readyCount} messages wait for the kill switch to probe (at ${restarting.restartAt ?? 'its restart'})`,
        );
      }
    }
  }
  return lines;
}
