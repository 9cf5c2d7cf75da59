import type { ServiceBusEntityAdministration } from '../../../transports/servicebus/index.js';
import type { ServiceBusEmulator } from '../../infra/servicebus/start-service-bus-emulator.js';

/**
 * Entity administration against the local emulator's admin API: the stand-in for the service's
 * HTTPS administration API, which the emulator does not speak.
 */
export function emulatorAdministration(emulator: () => ServiceBusEmulator): ServiceBusEntityAdministration {
  return {
    queueExists: async (name) => emulator().entityExists(name),
    async createQueue(name, options) {
      if (emulator().entityExists(name)) return;
      emulator().createQueue({
        name,
        requiresSession: options.requiresSession,
        lockDurationMs: options.lockDurationMs,
        maxDeliveryCount: options.maxDeliveryCount,
      });
    },
    topicExists: async (name) => emulator().entityExists(name),
    async createTopic(name) {
      if (!emulator().entityExists(name)) emulator().createTopic({ name, subscriptions: [] });
    },
    subscriptionExists: async (topic, name) => emulator().entityExists(`${topic}/Subscriptions/${name}`),
    async createSubscription(topic, name, options) {
      if (emulator().entityExists(`${topic}/Subscriptions/${name}`)) return;
      emulator().createSubscription(topic, { name, forwardTo: options.forwardTo });
    },
  };
}
