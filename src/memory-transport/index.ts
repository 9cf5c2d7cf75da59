import { z } from 'zod';
import { type Clock, defineTransport, systemClock, type TransportDefinition } from '../../src/transport-core/index.js';

import { MemoryBroker } from './memory-broker.js';
import { MemoryTransport } from './memory-transport.js';

export const MemoryTransportConfigSchema = z.strictObject({
  kind: z.literal('memory'),
  /** How long a delivery stays locked before it is redelivered with deliveryCount + 1. */
  lockTimeoutMs: z.number().int().min(10).max(86_400_000).default(30_000),
});
export type MemoryTransportConfig = z.infer<typeof MemoryTransportConfigSchema>;

export interface MemoryTransportOptions {
  /**
   * Share one broker between several buses or transports in one process (competing consumers in
   * tests). By default every transport created from this definition shares the definition's broker.
   */
  broker?: MemoryBroker;
}

/**
 * The in-memory transport: peek-lock with a lock timeout, delayed release, a dead-letter queue per
 * endpoint, pause/resume and prefetch, all in process. Messages do not survive the process.
 */
export function memoryTransport(options: MemoryTransportOptions = {}): TransportDefinition<MemoryTransportConfig> {
  let broker = options.broker;
  return defineTransport({
    kind: 'memory',
    configSchema: MemoryTransportConfigSchema,
    create(config, deps) {
      broker ??= new MemoryBroker({ clock: deps.clock, lockTimeoutMs: config.lockTimeoutMs });
      return new MemoryTransport(broker, deps);
    },
  });
}

/**
 * A broker to share between transports; `lockTimeoutMs` here wins over the transport config. Its
 * lock timeouts and delayed releases run on `clock` (the system clock by default; give the buses'
 * `ManualClock` to run them in virtual time, as `sluice/testing` does).
 */
export function createMemoryBroker(options: { lockTimeoutMs?: number; clock?: Clock } = {}): MemoryBroker {
  return new MemoryBroker({ clock: options.clock ?? systemClock, lockTimeoutMs: options.lockTimeoutMs ?? 30_000 });
}

export { MemoryBroker } from './memory-broker.js';
export { MemoryTransport } from './memory-transport.js';
