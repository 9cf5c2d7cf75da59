import pino, { type Logger } from 'pino';
import { type Bus, createBus, type TransportDefinition } from '../../../src/index.js';
import { type ServiceBusTransportConfigInput, serviceBusTransport } from '../../../transports/servicebus/index.js';
import {
  type ServiceBusEmulator,
  type ServiceBusEmulatorOptions,
  startServiceBusEmulator,
} from '../../infra/servicebus/start-service-bus-emulator.js';
import { emulatorAdministration } from './emulator-administration.js';

export interface ServiceBusFixture {
  readonly emulator: ServiceBusEmulator;
  readonly definition: TransportDefinition;
  /** A bus on the emulator; entities are created by `declare` through the emulator's admin API. */
  bus(
    service: string,
    transport?: Partial<Omit<ServiceBusTransportConfigInput, 'kind' | 'connectionString'>>,
    logger?: Logger,
  ): Bus;
  close(): Promise<void>;
}

/** Starts an emulator on a random port; buses made here are stopped by `close`. */
export async function startServiceBusFixture(options: ServiceBusEmulatorOptions = {}): Promise<ServiceBusFixture> {
  const emulator = await startServiceBusEmulator({ port: 0, ...options });
  const definition = serviceBusTransport({ administration: emulatorAdministration(() => emulator) });
  const buses: Bus[] = [];
  return {
    emulator,
    definition: definition as TransportDefinition,
    bus(service, transport = {}, logger = pino({ level: 'silent' })) {
      const bus = createBus(
        {
          service,
          transport: {
            kind: 'servicebus',
            connectionString: emulator.connectionString,
            entities: 'create',
            operationTimeoutMs: 10_000,
            ...transport,
          },
          shutdown: { signals: [], timeoutMs: 5_000 },
        },
        { transports: [definition as TransportDefinition], logger },
      );
      buses.push(bus);
      return bus;
    },
    async close() {
      await Promise.allSettled(buses.map((b) => b.stop()));
      await emulator.close();
    },
  };
}
