import { type ServiceBusTransportConfig, serviceBusTransport } from 'sluice/servicebus';
import { runTransportConformance } from 'sluice/testing/conformance';
import { afterAll, beforeAll } from 'vitest';
import { type ServiceBusEmulator, startServiceBusEmulator } from '../infra/servicebus/start-service-bus-emulator.js';
import { emulatorAdministration } from '../integration/servicebus/emulator-administration.js';

/**
 * The shared conformance suite on Azure Service Bus. By default against the local emulator (short
 * locks, so that a consumer that dies without settling is noticed within seconds); with
 * SLUICE_SERVICEBUS_CONNECTION_STRING set, against that namespace, creating the `conf-*` entities
 * through the administration API (the connection needs Manage rights; the service's shortest lock
 * is 5 s).
 */
const realConnectionString = process.env.SLUICE_SERVICEBUS_CONNECTION_STRING;
const lockDurationMs = realConnectionString ? 5_000 : 1_500;

let emulator: ServiceBusEmulator | undefined;
const definition = serviceBusTransport(
  realConnectionString
    ? {}
    : {
        administration: emulatorAdministration(() => {
          if (!emulator) throw new Error('emulator not started');
          return emulator;
        }),
      },
);

const config = (): ServiceBusTransportConfig =>
  definition.configSchema.parse({
    kind: 'servicebus',
    connectionString: realConnectionString ?? emulator?.connectionString,
    entities: 'create',
    createdQueues: { lockDurationMs, maxDeliveryCount: 10 },
    operationTimeoutMs: 10_000,
  });

beforeAll(async () => {
  if (!realConnectionString) emulator = await startServiceBusEmulator({ port: 0 });
});
afterAll(async () => {
  await emulator?.close();
});

runTransportConformance({
  name: 'servicebus',
  definition,
  // Known once the emulator listens (beforeAll): read when a case runs.
  config,
  capabilities: { publish: true, competingConsumers: true, deadLetterManagement: true },
  patienceMs: realConnectionString ? 20_000 : 6_000,
});
