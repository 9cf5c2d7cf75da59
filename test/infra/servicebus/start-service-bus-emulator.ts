import type { AddressInfo, Server, Socket } from 'node:net';
import type { Connection, Receiver, Sender } from 'rhea';
import rhea from 'rhea';
import { ConnectionState } from './connection-state.js';
import type { DeliveryLink } from './delivery-link.js';
import {
  EntityRegistry,
  type QueueDefinition,
  type SubscriptionDefinition,
  type TopicDefinition,
} from './entity-registry.js';
import { onClientReceiverAttached, onClientSenderAttached, type RouterContext } from './link-router.js';
import type { MessageSnapshot } from './message-entity.js';
import { TimerSet } from './timer-set.js';
import { type AmqpErrorShape, detachForced, entityNotFound } from './amqp-errors.js';
import { remoteAttach } from './rhea-internals.js';

export interface ServiceBusEmulatorOptions {
  /** TCP port; 0 (default) picks a free one. Never defaults to 5672 (RabbitMQ lives there). */
  readonly port?: number;
  readonly host?: string;
  readonly sasKeyName?: string;
  readonly sasKey?: string;
  /** Default peek-lock and session lock duration (default 30 000 ms). */
  readonly lockDurationMs?: number;
  /** Default max delivery count before dead-lettering (default 10). */
  readonly maxDeliveryCount?: number;
  readonly queues?: readonly (string | QueueDefinition)[];
  readonly topics?: readonly TopicDefinition[];
  /** Cap on how long accept-next-session waits for a session (default 65 000 ms, like the service). */
  readonly maxSessionWaitMs?: number;
}

export interface ServiceBusEmulator {
  readonly host: string;
  readonly port: number;
  /** `Endpoint=sb://host:port;SharedAccessKeyName=..;SharedAccessKey=..;UseDevelopmentEmulator=true` */
  readonly connectionString: string;
  /** Snapshot of the messages stored in an entity (`queue`, `queue/$DeadLetterQueue`, `topic/Subscriptions/sub`). */
  messages(entityPath: string): MessageSnapshot[];
  /** Active (receivable, unlocked or locked) messages in an entity; excludes deferred and scheduled ones. */
  activeMessageCount(entityPath: string): number;
  /** Number of open AMQP connections. */
  connectionCount(): number;
  /**
   * Declares a queue while running: the stand-in for the administration API (HTTP/ATOM, which the
   * emulator does not speak). Throws if the path is taken.
   */
  createQueue(definition: QueueDefinition): void;
  /** Declares a topic (and any subscriptions given) while running. Throws if the path is taken. */
  createTopic(definition: TopicDefinition): void;
  /** Adds a subscription to a declared topic; `forwardTo` makes it auto-forward into a queue. */
  createSubscription(topic: string, definition: SubscriptionDefinition): void;
  /**
   * Deletes a queue (and its messages and dead-letter subqueue) while running, as the administration
   * API does: the links receiving from it are detached with `amqp:not-found` (SDK
   * `MessagingEntityNotFound`), and attaching to it fails so until it is created again.
   */
  deleteQueue(name: string): void;
  /**
   * Detaches every link receiving from `entityPath` with `amqp:link:detach-forced`, as the service
   * does to idle links or during maintenance; the entity stays, and the SDK attaches again.
   */
  forceDetach(entityPath: string): number;
  /**
   * Ends every message lock held on `entityPath` now, as if its lock duration had passed (a client
   * too busy to renew in time): the messages become available again with deliveryCount + 1, and a
   * later settlement or renewal under those locks gets `MessageLockLost`. Returns how many.
   */
  expireLocks(entityPath: string): number;
  /** Whether a queue, topic, subscription or subqueue exists at `entityPath` (case-insensitive). */
  entityExists(entityPath: string): boolean;
  /** Abruptly destroys every client socket (to exercise reconnects). */
  dropConnections(): void;
  close(): Promise<void>;
}

export const DEFAULT_SAS_KEY_NAME = 'RootManageSharedAccessKey';
export const DEFAULT_SAS_KEY = 'SluiceEmulatorKey=';

/** Starts a local AMQP 1.0 server that speaks the Azure Service Bus protocol surface used by @azure/service-bus. */
export async function startServiceBusEmulator(options: ServiceBusEmulatorOptions = {}): Promise<ServiceBusEmulator> {
  const host = options.host ?? '127.0.0.1';
  const keyName = options.sasKeyName ?? DEFAULT_SAS_KEY_NAME;
  const key = options.sasKey ?? DEFAULT_SAS_KEY;
  const timers = new TimerSet();
  const now = (): number => Date.now();
  const registry = new EntityRegistry({
    queues: options.queues ?? [],
    topics: options.topics ?? [],
    lockDurationMs: options.lockDurationMs ?? 30_000,
    maxDeliveryCount: options.maxDeliveryCount ?? 10,
    timers,
    now,
  });

  const states = new WeakMap<Connection, ConnectionState>();
  const connections = new Set<Connection>();
  const sockets = new Set<Socket>();
  const deliveryLinks = new Map<Sender, DeliveryLink>();
  /** Links the SDK sends on (server receivers), to detach those of a deleted entity. */
  const inbound = new Set<Receiver>();

  const ctx: RouterContext = {
    registry,
    timers,
    now,
    keyName,
    key,
    maxSessionWaitMs: options.maxSessionWaitMs ?? 65_000,
    state(connection) {
      let s = states.get(connection);
      if (s === undefined) {
        s = new ConnectionState();
        states.set(connection, s);
      }
      return s;
    },
    track(link, delivery) {
      deliveryLinks.set(link, delivery);
    },
  };

  const stopLinks = (match: (link: Sender) => boolean): void => {
    for (const [link, delivery] of deliveryLinks) {
      if (!match(link)) continue;
      delivery.stop();
      deliveryLinks.delete(link);
    }
  };

  const container = rhea.create_container({
    id: 'sluice-servicebus-emulator',
    autoaccept: false,
    treat_modified_as_released: false,
  });
  container.sasl_server_mechanisms.enable_anonymous();
  container.on('connection_open', (e: { connection: Connection }) => {
    connections.add(e.connection);
    e.connection.local.open.properties = { product: 'sluice-servicebus-emulator' };
  });
  const onConnectionGone = (e: { connection: Connection }): void => {
    connections.delete(e.connection);
    stopLinks((link) => link.connection === e.connection);
  };
  container.on('connection_close', onConnectionGone);
  container.on('disconnected', onConnectionGone);
  container.on('connection_error', () => undefined);
  container.on('session_close', (e: { session: object }) => {
    stopLinks((link) => link.session === e.session);
  });
  container.on('sender_open', (e: { sender: Sender }) => onClientReceiverAttached(e.sender, ctx));
  container.on('receiver_open', (e: { receiver: Receiver }) => {
    onClientSenderAttached(e.receiver, ctx);
    inbound.add(e.receiver);
  });
  container.on('receiver_close', (e: { receiver: Receiver }) => inbound.delete(e.receiver));
  container.on('sender_close', (e: { sender: Sender }) => stopLinks((link) => link === e.sender));
  container.on('sender_error', () => undefined);
  container.on('receiver_error', () => undefined);
  container.on('session_error', () => undefined);
  container.on('error', () => undefined);

  const server: Server = container.listen({ port: options.port ?? 0, host });
  server.on('connection', (socket: Socket) => {
    // Small frames (dispositions, flows) must not wait for Nagle's algorithm and delayed ACKs.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    if (server.listening) return resolve();
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;

  /** Detaches the receiving links whose entity path matches, with the error made from the path. */
  const detach = (matches: (path: string) => boolean, error: (path: string) => AmqpErrorShape): number => {
    let n = 0;
    for (const link of [...deliveryLinks.keys()]) {
      const address = String(link.source?.address ?? '');
      if (!matches(EntityRegistry.normalize(address))) continue;
      stopLinks((l) => l === link);
      link.close(error(address));
      n++;
    }
    return n;
  };

  const entity = (path: string) => {
    const found = registry.receiveSource(path);
    if (found === undefined) throw new Error(`Unknown entity '${path}'.`);
    return found;
  };

  return {
    host,
    port,
    connectionString: `Endpoint=sb://${host}:${port};SharedAccessKeyName=${keyName};SharedAccessKey=${key};UseDevelopmentEmulator=true`,
    messages: (path) => entity(path).snapshot(),
    activeMessageCount: (path) =>
      entity(path)
        .snapshot()
        .filter((m) => m.state === 'active').length,
    createQueue: (definition) => registry.addQueue(definition),
    createTopic: (definition) => registry.addTopic(definition),
    createSubscription: (topic, definition) => registry.addSubscription(topic, definition),
    entityExists: (path) => registry.exists(path),
    deleteQueue(name) {
      const deleted = new Set(registry.removeQueue(name));
      detach((path) => deleted.has(path), entityNotFound);
      // Senders to it are detached too: their next send attaches again, and finds it (or not).
      for (const link of [...inbound]) {
        const address = String(remoteAttach(link).target?.address ?? '');
        if (!deleted.has(EntityRegistry.normalize(address))) continue;
        inbound.delete(link);
        link.close(entityNotFound(address));
      }
    },
    forceDetach(entityPath) {
      return detach((path) => path === EntityRegistry.normalize(entityPath), detachForced);
    },
    expireLocks: (path) => entity(path).expireLocks(),
    connectionCount: () => connections.size,
    dropConnections() {
      for (const s of sockets) s.destroy();
    },
    async close() {
      timers.clearAll();
      stopLinks(() => true);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
