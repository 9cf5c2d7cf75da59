import { isServiceBusError, ServiceBusAdministrationClient } from '@azure/service-bus';

/** Properties of a queue that Sluice creates. */
export interface QueueCreation {
  readonly requiresSession: boolean;
  readonly lockDurationMs: number;
  readonly maxDeliveryCount: number;
}

/**
 * Creates and checks Service Bus entities for `entities: 'create'`. Every method is idempotent:
 * creating what already exists (also when another process won the race) resolves.
 * The default works over the service's administration API (HTTPS, Manage rights); tests against the
 * local emulator pass their own.
 */
export interface ServiceBusEntityAdministration {
  queueExists(name: string): Promise<boolean>;
  createQueue(name: string, options: QueueCreation): Promise<void>;
  topicExists(name: string): Promise<boolean>;
  createTopic(name: string): Promise<void>;
  subscriptionExists(topic: string, name: string): Promise<boolean>;
  /** A subscription that auto-forwards every message it gets into the queue `forwardTo`. */
  createSubscription(topic: string, name: string, options: { readonly forwardTo: string }): Promise<void>;
  close?(): Promise<void>;
}

/** `ServiceBusAdministrationClient` from the same connection string (needs Manage rights). */
export function sdkEntityAdministration(connectionString: string): ServiceBusEntityAdministration {
  const admin = new ServiceBusAdministrationClient(connectionString);
  return {
    queueExists: (name) => admin.queueExists(name),
    async createQueue(name, options) {
      await ignoreExists(
        admin.createQueue(name, {
          requiresSession: options.requiresSession,
          lockDuration: isoSeconds(options.lockDurationMs),
          maxDeliveryCount: options.maxDeliveryCount,
        }),
      );
    },
    topicExists: (name) => admin.topicExists(name),
    async createTopic(name) {
      await ignoreExists(admin.createTopic(name));
    },
    subscriptionExists: (topic, name) => admin.subscriptionExists(topic, name),
    async createSubscription(topic, name, options) {
      await ignoreExists(admin.createSubscription(topic, name, { forwardTo: options.forwardTo }));
    },
  };
}

/** ISO 8601 duration in whole seconds; the service accepts 5 s to 5 min for a lock. */
function isoSeconds(ms: number): string {
  return `PT${Math.max(5, Math.min(300, Math.ceil(ms / 1000)))}S`;
}

async function ignoreExists(operation: Promise<unknown>): Promise<void> {
  try {
    await operation;
  } catch (error) {
    if (isServiceBusError(error) && error.code === 'MessagingEntityAlreadyExists') return;
    if ((error as { statusCode?: number }).statusCode === 409) return;
    throw error;
  }
}
