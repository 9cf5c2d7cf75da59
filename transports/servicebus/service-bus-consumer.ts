import {
  isServiceBusError,
  type ProcessErrorArgs,
  type ServiceBusClient,
  type ServiceBusMessage,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
} from '@azure/service-bus';
import type { Logger } from 'pino';
import type { Clock, Consumer, ConsumeOptions, DeliveryCallback } from '../../src/transport-core/index.js';
import { ConsumerGate, createDeferred } from '../../src/transport-core/index.js';
import type { ServiceBusTransportConfig } from './service-bus-config.js';
import { ServiceBusDelivery } from './service-bus-delivery.js';
import { type Lane, newLane, receiverOptions, runSessionWorker } from './session-worker.js';

export interface ServiceBusConsumerOptions {
  readonly client: ServiceBusClient;
  readonly address: string;
  readonly callback: DeliveryCallback;
  /** The transport's: sessions, their number and idle timeout, the lock renewal. */
  readonly config: ServiceBusTransportConfig;
  readonly schedule: (message: ServiceBusMessage, at: Date) => Promise<void>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** `paused`: no receiver subscribes (or session is accepted) until `resume()`. */
  readonly consume: ConsumeOptions;
  readonly onClosed: (consumer: ServiceBusConsumer) => void;
}

interface Admitted {
  readonly lane: Lane;
  readonly message: ServiceBusReceivedMessage;
  readonly done: () => void;
}

/**
 * A consumer of one queue: `subscribe` with manual settlement and `maxConcurrentCalls = prefetch`
 * on the queue's receiver, or on up to `maxConcurrentSessions` session receivers (accept-next-
 * session) when the queue requires sessions. The SDK tops up one credit only when a delivery is
 * done (its message handler promise resolves on settlement), and a gate shared by all receivers
 * hands out at most `prefetch` unsettled deliveries; messages past it wait, locked, for a slot.
 *
 * Pause drains the receivers' credit and gives back waiting messages; close also gives back
 * (abandons) what is still unsettled after the drain timeout.
 *
 * The SDK restores a receiver on its own, retrying forever, and reports each failed round to
 * `processError`. A receive error it retries (the connection, a forced detach, a busy namespace) is
 * reported as `reconnecting` until the receiver is attached again; one it cannot fix by retrying
 * (the queue deleted or disabled: `MessagingEntityNotFound`, ...) as `stopped`: the receivers stop
 * and the endpoint makes a new consumer, declaring the queue first. The SDK closes a receiver only
 * when asked (by this consumer or by closing the client, which only the transport does).
 */
export class ServiceBusConsumer implements Consumer {
  /** Prefetch, paused / closed / stopped, the drain and the stop report: the kernel's gate. */
  readonly gate: ConsumerGate;
  /** Reported `reconnecting` and not yet `receiving` again. */
  #reconnecting = false;
  readonly lanes = new Set<Lane>();
  readonly #waiting: Admitted[] = [];
  readonly #handedOut = new Set<ServiceBusDelivery>();
  readonly abort = new AbortController();
  /** Resolved while not paused: what a session worker waits on. */
  resumed = createDeferred<void>();
  #sessionWorkers: Promise<void>[] = [];

  constructor(readonly options: ServiceBusConsumerOptions) {
    this.gate = new ConsumerGate({
      ...options.consume,
      clock: options.clock,
      logger: options.logger,
      what: `Service Bus consumer of "${options.address}"`,
    });
    if (!options.consume.paused) this.resumed.resolve();
  }

  get inFlight(): number {
    return this.gate.inFlight;
  }

  start(): void {
    const { client, address, config } = this.options;
    if (!config.sessions) {
      const lane = this.newLane(client.createReceiver(address, receiverOptions(config)), false);
      if (!this.gate.paused) this.subscribe(lane);
      return;
    }
    for (let i = 0; i < config.maxConcurrentSessions; i++) this.#sessionWorkers.push(runSessionWorker(this));
  }

  newLane(receiver: ServiceBusReceiver, session: boolean): Lane {
    const lane = newLane(receiver, session, this.options);
    this.lanes.add(lane);
    return lane;
  }

  subscribe(lane: Lane): void {
    const handlers = {
      processMessage: (message: ServiceBusReceivedMessage) => {
        this.receiving();
        return this.#admit(lane, message);
      },
      processError: async (args: ProcessErrorArgs) => this.#onError(lane, args),
      // Not in the SDK's public types: called each time the receive link is attached (again) and
      // has credit. The only way to learn that a receiver that was failing receives again before a
      // message arrives.
      postInitialize: async () => this.receiving(),
    };
    lane.subscription = lane.receiver.subscribe(handlers, {
      autoCompleteMessages: false,
      maxConcurrentCalls: this.options.consume.prefetch,
    });
  }

  async unsubscribe(lane: Lane): Promise<void> {
    const subscription = lane.subscription;
    lane.subscription = undefined;
    await subscription?.close().catch(() => {});
  }

  #onError(lane: Lane, args: ProcessErrorArgs): void {
    const code = isServiceBusError(args.error) ? args.error.code : undefined;
    if (lane.session && (code === 'SessionLockLost' || lane.receiver.isClosed)) lane.lost = true;
    if (this.gate.closed || this.gate.stopped) return;
    // We closed this lane's subscription (pause, stop): what it reports now is that close, e.g. an
    // AbortError from a subscription still starting up. Not a warning on every quick stop.
    if (lane.subscription === undefined) {
      this.options.logger.debug({ err: args.error, code, address: this.options.address }, 'receiver closed');
      return;
    }
    this.options.logger.warn(
      { err: args.error, code, errorSource: args.errorSource, address: this.options.address },
      'Service Bus receiver reported an error',
    );
    // A session lane ends and its worker accepts the next session; settlement and lock renewal
    // errors concern one message; an AbortError ends a receive that was asked to stop (pause,
    // close, or the client closed, which only the transport does).
    if (lane.session || args.errorSource !== 'receive' || args.error.name === 'AbortError') return;
    this.receiveFailed(args.error);
  }

  /** The receiver (or session acceptance) failed: retried by the SDK, or not fixable by retrying. */
  receiveFailed(error: Error): void {
    if (isServiceBusError(error) && error.retryable) {
      if (this.#reconnecting) return;
      this.#reconnecting = true;
      this.options.consume.onStatus?.({ kind: 'reconnecting', error });
      return;
    }
    this.#stop(`Service Bus stopped receiving from "${this.options.address}"`, error);
  }

  receiving(): void {
    if (!this.#reconnecting || this.gate.closed || this.gate.stopped) return;
    this.#reconnecting = false;
    this.options.consume.onStatus?.({ kind: 'receiving' });
  }

  /**
   * Stops receiving for good and says so once: the SDK would retry forever in vain. Handed-out
   * deliveries keep their receiver (and may still settle) until `close()`.
   */
  #stop(reason: string, cause: Error): void {
    if (this.gate.closed || this.gate.stopped) return;
    void this.#stopReceiving(true);
    this.gate.stop(reason, cause);
  }

  /**
   * Gives back what waits for a slot and takes every receiver's credit away; `ending` (stop, close)
   * also ends the session workers' waits, for good.
   */
  #stopReceiving(ending: boolean): Promise<unknown> {
    if (ending) {
      this.abort.abort();
      this.resumed.resolve();
    }
    for (const admitted of this.#waiting.splice(0)) this.#giveBack(admitted);
    return Promise.all([...this.lanes].map((lane) => this.unsubscribe(lane)));
  }

  /** The SDK's message handler: resolves when the message no longer holds a slot. */
  #admit(lane: Lane, message: ServiceBusReceivedMessage): Promise<void> {
    return new Promise<void>((resolve) => {
      lane.pending++;
      lane.lastActivity = this.options.clock.now();
      const letGo = lane.guard.received(message);
      const admitted: Admitted = {
        lane,
        message,
        done: () => {
          letGo();
          lane.pending--;
          lane.lastActivity = this.options.clock.now();
          resolve();
        },
      };
      if (this.gate.held) this.#giveBack(admitted);
      else if (!this.gate.canTake()) this.#waiting.push(admitted);
      else this.#handOut(admitted);
    });
  }

  #giveBack(admitted: Admitted): void {
    admitted.lane.sequencer
      .run('other', () => admitted.lane.receiver.abandonMessage(admitted.message))
      .catch(() => {}) // lock already lost or link gone: the broker redelivers after the lock expires
      .finally(admitted.done);
  }

  #handOut(admitted: Admitted): void {
    const delivery: ServiceBusDelivery = new ServiceBusDelivery(admitted.message, admitted.lane.receiver, {
      address: this.options.address,
      schedule: this.options.schedule,
      now: () => this.options.clock.now(),
      session: admitted.lane.session,
      sequencer: admitted.lane.sequencer,
      onDone: () => {
        this.#handedOut.delete(delivery);
        admitted.done();
        this.gate.settled();
        this.#pumpWaiting();
      },
    });
    this.#handedOut.add(delivery);
    this.gate.handOut(delivery, this.options.callback, () => void delivery.handBack());
  }

  #pumpWaiting(): void {
    while (this.gate.canTake()) {
      const next = this.#waiting.shift();
      if (next === undefined) return;
      this.#handOut(next);
    }
  }

  async pause(): Promise<void> {
    if (this.gate.closed || !this.gate.pause()) return;
    this.resumed = createDeferred<void>();
    await this.#stopReceiving(false);
  }

  async resume(): Promise<void> {
    if (!this.gate.resume()) return;
    this.resumed.resolve();
    if (this.gate.stopped) return;
    if (!this.options.config.sessions) for (const lane of this.lanes) this.subscribe(lane);
  }

  async close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (!this.gate.close()) return;
    await this.#stopReceiving(true);
    await this.gate.drain(options.drainTimeoutMs);
    await Promise.all([...this.#handedOut].map((delivery) => delivery.handBack()));
    await Promise.allSettled(this.#sessionWorkers);
    await Promise.all([...this.lanes].map((lane) => lane.receiver.close().catch(() => {})));
    this.lanes.clear();
    this.options.onClosed(this);
  }

  /**
   * The connection is going away (transport close, as when a process dies): nothing is settled;
   * the broker redelivers what this consumer held once the locks expire. Later settlements of its
   * deliveries reject with `LockLostError`.
   */
  abandonOnConnectionLoss(): void {
    this.gate.close();
    this.abort.abort();
    this.resumed.resolve();
    for (const delivery of [...this.#handedOut]) delivery.markLost();
    for (const admitted of this.#waiting.splice(0)) admitted.done();
  }
}
