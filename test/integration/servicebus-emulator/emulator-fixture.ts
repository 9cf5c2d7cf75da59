import { ServiceBusClient } from '@azure/service-bus';
import {
  type ServiceBusEmulator,
  type ServiceBusEmulatorOptions,
  startServiceBusEmulator,
} from '../../infra/servicebus/start-service-bus-emulator.js';

export interface EmulatorFixture {
  readonly emulator: ServiceBusEmulator;
  readonly client: ServiceBusClient;
  close(): Promise<void>;
}

/** Starts an emulator on a random port and an SDK client pointed at it. */
export async function startFixture(options: ServiceBusEmulatorOptions): Promise<EmulatorFixture> {
  const emulator = await startServiceBusEmulator({ port: 0, ...options });
  const client = new ServiceBusClient(emulator.connectionString, {
    retryOptions: { maxRetries: 1, retryDelayInMs: 100, timeoutInMs: 10_000 },
  });
  return {
    emulator,
    client,
    async close() {
      await client.close();
      await emulator.close();
    },
  };
}

/** Polls `condition` until it holds or the deadline passes. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
