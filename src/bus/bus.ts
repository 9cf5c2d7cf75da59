import type { Logger } from 'pino';
import type { MessageContract, MessageInputOf } from '../contracts/define-message.js';
import type { EnvelopeOptions } from '../envelope/envelope.js';
import { LifecycleError, RegistrationError } from '../errors/sluice-error.js';
import type { HealthServer } from '../health/health-server.js';
import {
  type ExplainOptions,
  type Explanation,
  explainKey,
  explainMessage,
  type MessageExplanation,
} from '../history/explain.js';
import type { InboxStore } from '../inbox/inbox-store.js';
import type { KillSwitchControl } from '../killswitch/kill-switch.js';
import type { Outbox } from '../outbox/outbox.js';
import { type BusEventListener, type BusEventName, type BusEvents, EventHub } from '../telemetry/events.js';
import type { DeadLetterQueue } from '../transport-core/dead-letter-queue.js';
import type { Transport } from '../transport-core/transport.js';
import { explainSources, keepsHistory } from './bus-history.js';
import type { BusHealth } from './bus-health.js';
import { BusOutbox, type TransactionScope } from './bus-outbox.js';
import type { BusParts, BusState } from './bus-parts.js';
import { BusProducer } from './bus-producer.js';
import { buildEndpoint } from './build-endpoint.js';
import type { EndpointConfig } from './config-schema.js';
import type { EndpointOptions } from './create-bus.js';
import { EndpointBuilder, type EndpointRegistration } from './endpoint-builder.js';
import { cleanupInbox } from './inbox-cleanup.js';
import { KillSwitches, type KillSwitchesOptions } from './kill-switches.js';
import { BusLifecycle } from './bus-lifecycle.js';

export type { BusHealth } from './bus-health.js';
export type { TransactionScope } from './bus-outbox.js';
export type { BusParts, BusState } from './bus-parts.js';
export { STOP_MARGIN_MS } from './bus-stop-steps.js';

/**
 * The composition root: owns the transport and the endpoints, publishes and sends, and runs the
 * lifecycle (start, graceful stop on signals). Create it with `createBus`. What it composes lives
 * beside it: the producer (`bus-producer.ts`), the outbox and `bus.transaction` (`bus-outbox.ts`),
 * each endpoint's pipeline and observers (`build-endpoint.ts`), the kill switches, the health
 * server, the inbox cleanup, the history's sources, the shutdown's steps.
 */
export class Bus<TTx = undefined> {
  readonly #events = new EventHub<BusEvents>((error, event) =>
    this.parts.logger.error({ err: error, event }, 'an event listener failed'),
  );
  readonly #killSwitches: KillSwitches;
  readonly #producer: BusProducer;
  /** The outbox, when the inbox store has one and `outbox.enabled`. */
  readonly #outbox: BusOutbox<TTx>;
  readonly #lifecycle: BusLifecycle;

  constructor(private readonly parts: BusParts) {
    const state = () => this.#lifecycle.state;
    this.#producer = new BusProducer(parts, state);
    const emit: KillSwitchesOptions['emit'] = (event, payload) => this.#events.emit(event, payload);
    this.#killSwitches = new KillSwitches({
      clock: parts.clock,
      logger: parts.logger,
      waits: parts.waits,
      emit,
      consumer: (name) => {
        const endpoint = this.#lifecycle.endpoints.get(name);
        return endpoint?.state === 'running' ? endpoint : undefined;
      },
    });
    this.#outbox = new BusOutbox<TTx>(parts, this.#producer, state, (endpoint, error) => {
      // A row a handler of `endpoint` wrote could not go to the broker: its kill switch counts a dependency failure.
      const registration = endpoint === undefined ? undefined : parts.registrations.get(endpoint);
      if (registration && state() === 'started') this.#killSwitches.brokerFailed(registration, error);
    });
    const outbox = this.#outbox.outbox;
    this.#lifecycle = new BusLifecycle({
      parts,
      bus: this,
      outbox,
      killSwitches: this.#killSwitches,
      build: (registration) =>
        buildEndpoint(registration, {
          parts,
          producer: this.#producer,
          outbox,
          killSwitch: this.#killSwitches.of(registration),
          keepsHistory: keepsHistory(parts, registration),
          emit,
        }),
    });
  }

  get state(): BusState {
    return this.#lifecycle.state;
  }

  get logger(): Logger {
    return this.parts.logger;
  }

  /** The transport, for tests and tools (dead letters, broker-specific checks). */
  get transport(): Transport {
    return this.parts.transport;
  }

  /**
   * Declares an endpoint (or returns the one declared under this name). Options given here are
   * overridden by `endpoints.<name>` in the configuration.
   */
  endpoint(name: string, options: EndpointOptions & { inbox: false }): EndpointBuilder<undefined>;
  endpoint(name: string, options?: EndpointOptions): EndpointBuilder<TTx>;
  endpoint(name: string, options: EndpointOptions = {}): EndpointBuilder<TTx> | EndpointBuilder<undefined> {
    this.#assertConfigurable();
    let registration = this.parts.registrations.get(name);
    if (registration && Object.keys(options).length > 0) {
      throw new RegistrationError(`endpoint "${name}" is already declared; give its options once`);
    }
    if (!registration) {
      registration = this.parts.resolveEndpoint(name, options);
      this.parts.registrations.set(name, registration);
    }
    return new EndpointBuilder<TTx>(registration, () => this.#assertConfigurable());
  }

  #assertConfigurable(): void {
    const { state } = this.#lifecycle;
    if (state !== 'created') throw new LifecycleError(`handlers must be registered before start (bus is ${state})`);
  }

  /**
   * Starts the health server (when enabled), waits for the inbox store to answer (up to the store's
   * `startupWaitMs`, with backoff, saying in the logs what it waits for; readiness reports
   * not-ready meanwhile), connects, declares every endpoint's topology, then starts consuming. On
   * failure everything started is closed again and the bus is `stopped`; `stop()` may still be called.
   */
  start(): Promise<void> {
    return this.#lifecycle.start();
  }

  /** Publishes an event to every endpoint that handles its type. Resolves once the broker has it. */
  publish<C extends MessageContract>(
    contract: C,
    data: MessageInputOf<C>,
    options: EnvelopeOptions = {},
  ): Promise<string> {
    return this.#producer.publish(contract, data, options);
  }

  /** Sends a command to one endpoint: a local endpoint's name, or any broker address. */
  send<C extends MessageContract>(
    endpoint: string,
    contract: C,
    data: MessageInputOf<C>,
    options: EnvelopeOptions = {},
  ): Promise<string> {
    return this.#producer.send(endpoint, contract, data, options);
  }

  /**
   * Runs `work` in one transaction of the inbox store: what it publishes and sends is written to the
   * outbox in that transaction and dispatched after the commit (in process at once; by a relay after
   * a crash). Returns what `work` returns, once committed. When `work` throws, the transaction rolls
   * back, nothing is sent, and the error is rethrown. Message ids are random unless `options.id`
   * gives one (a retry of the work then writes the same id, and downstream inboxes deduplicate).
   *
   * @throws ConfigError when the bus has no inbox store, or its store has no outbox, or the outbox is off.
   * @throws LifecycleError before `start()` or after `stop()`.
   */
  transaction<R>(work: (scope: TransactionScope<TTx>) => Promise<R>): Promise<R> {
    return this.#outbox.transaction(work);
  }

  /** The outbox, when the bus has one (its store's rows, for tools and tests). */
  get outbox(): Outbox | undefined {
    return this.#outbox.outbox;
  }

  /** The effective settings of a declared endpoint: code options overridden by configuration. */
  endpointSettings(endpoint: string): EndpointConfig {
    return this.#registration(endpoint).config;
  }

  /** The dead-letter queue of a declared endpoint. */
  deadLetters(endpoint: string): DeadLetterQueue {
    return this.parts.transport.deadLetters(this.#registration(endpoint).config.address ?? endpoint);
  }

  /** The kill switch of a declared endpoint: state and view, `trip(reason)`, `reset()`. */
  killSwitch(endpoint: string): KillSwitchControl {
    return this.#killSwitches.of(this.#registration(endpoint));
  }

  #registration(endpoint: string): EndpointRegistration {
    const registration = this.parts.registrations.get(endpoint);
    if (!registration) throw new RegistrationError(`no endpoint "${endpoint}" is declared`);
    return registration;
  }

  /** Subscribes to a bus event (`BusEvents`: `killswitch.tripped`, ...); returns the unsubscribe function. */
  on<E extends BusEventName>(event: E, listener: BusEventListener<E>): () => void {
    return this.#events.on(event, listener);
  }

  /** The health server, when `health.enabled` and the bus has started. */
  get healthServer(): HealthServer | undefined {
    return this.#lifecycle.healthServer;
  }

  health(): BusHealth {
    return this.#lifecycle.health();
  }

  /**
   * Graceful stop: endpoints stop taking work, running handlers get `shutdown.timeoutMs`, what is
   * left goes back to the broker, then the transport, the inbox store and the health server close.
   * Returns within `shutdown.timeoutMs` + `STOP_MARGIN_MS` whatever the broker, the database
   * or the handlers do. Idempotent; concurrent calls share one stop. After a failed `start()` it
   * resolves at once; during `start()` it ends the wait for the store and resolves once `start()`
   * has failed and cleaned up.
   */
  stop(): Promise<void> {
    return this.#lifecycle.stop();
  }

  /** The inbox of the bus: look up what was processed ("why is this entity in this state?"). */
  get inbox(): InboxStore<TTx> | undefined {
    return this.parts.inbox?.store as InboxStore<TTx> | undefined;
  }

  /**
   * Deletes inbox rows older than the retention, in bounded batches (never one long statement).
   * Runs every `cleanupIntervalMs` while the bus runs; returns how many rows went.
   */
  cleanupInbox(): Promise<number> {
    return cleanupInbox(this.parts);
  }

  /**
   * Why is the entity `key` in its state? Its timeline on every endpoint of the bus (or `endpoint`),
   * oldest first: each message's outcome in plain words, with the version a stale one lost to and
   * what each caused (the outbox); the ordering guard's state of the key; and the key's dead letters
   * still in the queues (scanned up to `history.deadLetterScanLimit`), with the hint to redrive.
   * Reads only; throws `RegistrationError` for an endpoint that is not declared, `DependencyError`
   * when the inbox's database cannot be reached. See docs/explain.md.
   */
  async explain(key: string, options: ExplainOptions = {}): Promise<Explanation> {
    return explainKey(
      explainSources(this.parts, options.endpoint, (name) => this.deadLetters(name)),
      key,
      options,
    );
  }

  /** Where one message went, on every endpoint of this bus: its history rows and its dead letters. */
  async explainMessage(messageId: string): Promise<MessageExplanation> {
    return explainMessage(
      explainSources(this.parts, undefined, (name) => this.deadLetters(name)),
      messageId,
    );
  }
}
