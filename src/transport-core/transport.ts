import type { Delivery } from './delivery.js';
import type { DeadLetterQueue } from './dead-letter-queue.js';

/**
 * What a transport can do natively. The conformance suite and the bus read these instead of
 * special-casing transports.
 */
export interface TransportCapabilities {
  /** The broker can delay a released message itself (else: delay queues, retry topics, timers). */
  readonly nativeDelay: boolean;
  /** The broker has a dead-letter queue of its own. */
  readonly nativeDeadLetter: boolean;
  /** Where `deliveryCount` comes from. */
  readonly deliveryCount: 'native' | 'header';
  /** How same-key order is kept by the broker when several consumers compete. */
  readonly ordering: 'none' | 'partition' | 'session';
  /** Messages survive a restart of the process that holds the broker. */
  readonly durable: boolean;
}

/** A message to hand to the broker. */
export interface OutgoingMessage {
  readonly messageId: string;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly contentType: string;
  /** Entity/partition key, used for partitioning and sessions. */
  readonly key: string | undefined;
  /** The contract type, used to route publishes. */
  readonly messageType: string;
}

/** Declares what one endpoint needs from the broker; idempotent. */
export interface EndpointTopology {
  /** The endpoint's address: its queue (or topic + group, or subscription). */
  readonly address: string;
  /** The endpoint's name (used for group ids and subscription names). */
  readonly endpoint: string;
  /** Message types the endpoint handles: publishes of these types reach it. */
  readonly messageTypes: readonly string[];
  /**
   * Where the endpoint moves messages of types it does not handle (`unknownTypes: 'skippedQueue'`).
   * Declared with the endpoint as a plain address the transport can `send` to (a queue; on Kafka a
   * topic), nothing consuming it; never left to the broker's auto-creation.
   */
  readonly skippedAddress?: string;
}

/**
 * What a consumer reports about itself, unasked. Pause, resume and close are never reported: the
 * owner asked for those.
 * - `stopped`: the consumer will hand out nothing more and will not recover by itself (the broker
 *   cancelled it, its channel or client died, its group membership crashed for good). Deliveries
 *   already handed out may still settle; the owner calls `close()` to release the rest and makes a
 *   new consumer. Reported at most once, and never after `close()` was called.
 * - `reconnecting`: it cannot receive right now and its broker client is restoring it on its own
 *   (a Service Bus link being attached again); `error` says why.
 * - `receiving`: it receives again after `reconnecting`.
 */
export type ConsumerStatus =
  | { readonly kind: 'stopped'; readonly error: Error }
  | { readonly kind: 'reconnecting'; readonly error: Error }
  | { readonly kind: 'receiving' };

export interface ConsumeOptions {
  /** Most deliveries handed out and not yet settled (prefetch). */
  readonly prefetch: number;
  /**
   * Start paused: nothing is handed out until `resume()`. A consumer re-created while the kill
   * switch holds its endpoint starts so, and never delivers in between.
   */
  readonly paused?: boolean;
  /** Told when the consumer stops, or cannot receive, on its own (see {@link ConsumerStatus}). */
  readonly onStatus?: (status: ConsumerStatus) => void;
}

/**
 * Called once per delivery. The transport does not wait for the returned promise to hand out the
 * next one (up to `prefetch` unsettled); settlement, not the promise, frees a slot.
 */
export type DeliveryCallback = (delivery: Delivery) => void;

/** A running consumer of one address. */
export interface Consumer {
  /** Stops handing out deliveries; in-flight ones may still settle. Idempotent. */
  pause(): Promise<void>;
  /** Hands out deliveries again. Idempotent. */
  resume(): Promise<void>;
  /**
   * Stops for good: no new deliveries, then waits until every handed-out delivery is settled or
   * `drainTimeoutMs` passed; whatever is still unsettled then goes back to the broker.
   */
  close(options?: { drainTimeoutMs?: number }): Promise<void>;
  /** Deliveries handed out and not yet settled. */
  readonly inFlight: number;
}

export type TransportState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

/**
 * An adapter to one broker. Created by a {@link TransportDefinition} from validated config.
 * All methods may be called concurrently once `connect` resolved.
 */
export interface Transport {
  readonly kind: string;
  readonly capabilities: TransportCapabilities;
  readonly state: TransportState;
  connect(signal?: AbortSignal): Promise<void>;
  /** Creates queues, bindings, subscriptions for the endpoint. Idempotent. */
  declare(topology: EndpointTopology): Promise<void>;
  consume(address: string, callback: DeliveryCallback, options: ConsumeOptions): Promise<Consumer>;
  /** Point-to-point: to one endpoint's address. Resolves once the broker has the message. */
  send(address: string, message: OutgoingMessage): Promise<void>;
  /** To every endpoint that handles `message.messageType`. Resolves once the broker has it. */
  publish(message: OutgoingMessage): Promise<void>;
  /** The dead-letter queue of an endpoint address: list, peek, redrive. */
  deadLetters(address: string): DeadLetterQueue;
  /**
   * Closes the connection at once. Unsettled deliveries go back to the broker (as when a process
   * dies). Graceful draining is done before, by closing consumers.
   */
  close(): Promise<void>;
}
