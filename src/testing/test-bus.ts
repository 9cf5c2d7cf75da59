import pino, { type Logger } from 'pino';
import { MemoryTransportConfigSchema } from '../memory-transport/index.js';
import type { MemoryBroker } from '../memory-transport/memory-broker.js';
import { MemoryTransport } from '../memory-transport/memory-transport.js';
import { Bus } from '../bus/bus.js';
import type { BusConfigInput } from '../bus/config-schema.js';
import { assembleBus } from '../bus/create-bus.js';
import type { InboxCommonConfig, InboxDefinition } from '../inbox/inbox-store.js';
import type { Clock } from '../internal/clock.js';
import type { WaitGauge } from '../internal/wait-gauge.js';
import { defineTransport } from '../transport-core/definition.js';
import type { MessageLog } from './message-log.js';
import { recordingTransport, type TransportRecorder } from './recording-transport.js';

/** What one bus of a harness is made from; every bus of a harness shares all but `instance`. */
export interface TestBusParts<TTx> {
  /** 0 for the harness's `bus`, then 1, 2, ... */
  readonly instance: number;
  readonly config: BusConfigInput;
  readonly inbox: InboxDefinition<TTx, InboxCommonConfig & { kind: string }> | undefined;
  readonly broker: MemoryBroker;
  readonly clock: Clock;
  readonly logger: Logger | undefined;
  readonly waits: WaitGauge;
  readonly log: MessageLog;
  /** Told of every delivery, settlement and message handed to the broker. */
  readonly notify: () => void;
}

/**
 * A bus as `createBus` makes it from `config` (validated the same way), on a memory transport of
 * the shared broker that reports what it sends and delivers, with its deliveries' outcomes and waits
 * reported too. No signal handlers; silent unless given a logger; a SQLite inbox without a path gets
 * a throwaway `:memory:` database; `stop()` gives running handlers 1 s unless `shutdown.timeoutMs` says.
 */
export function createTestBus<TTx>(parts: TestBusParts<TTx>): Bus<TTx> {
  const { instance, config, inbox, broker, log, notify } = parts;
  const recorder: TransportRecorder = {
    outgoing: (kind, address, message) => {
      log.recordOutgoing(instance, kind, address, message);
      notify();
    },
    delivered: notify,
  };
  const transport = defineTransport({
    kind: 'memory',
    configSchema: MemoryTransportConfigSchema,
    create: (_config, deps) => recordingTransport(new MemoryTransport(broker, deps), recorder),
  });
  const inboxSection = config.inbox ?? (inbox?.kind === 'sqlite' ? { kind: 'sqlite', path: ':memory:' } : undefined);
  const assembled = assembleBus<TTx>(
    {
      ...config,
      transport: { kind: 'memory', ...config.transport },
      ...(inboxSection ? { inbox: inboxSection } : {}),
      // A test's stop need not give a hung handler the production default of 30 s.
      shutdown: { timeoutMs: 1_000, ...config.shutdown, signals: [] },
    },
    { transports: [transport], inbox, logger: parts.logger ?? pino({ level: 'silent' }), clock: parts.clock },
  );
  return new Bus<TTx>({
    ...assembled,
    waits: parts.waits,
    observer: {
      done: (ctx, outcome) => {
        log.recordOutcome(instance, ctx, outcome);
        notify();
      },
    },
  });
}
