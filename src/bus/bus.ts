import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { MessageContract, MessageInputOf } from '../contracts/define-message.js';
import type { OutgoingOptions } from '../contracts/message-context.js';
import type { EnvelopeCodec } from '../envelope/cloudevents-codec.js';
import { createEnvelope } from '../envelope/cloudevents-codec.js';
import { encodeOutgoing } from '../envelope/encode-outgoing.js';
import type { Envelope, EnvelopeOptions } from '../envelope/envelope.js';
import { ConfigError, InvalidOutgoingMessageError, LifecycleError, RegistrationError } from '../errors/sluice-error.js';
import { Outbox, type OutboxView, type Written } from '../outbox/outbox.js';
import type { OutboxMessage } from '../outbox/outbox-store.js';
import { Admission } from '../killswitch/kill-switch-policy.js';
import type { OutgoingMessage } from '../transport/transport.js';
import { closeWithin } from './close-within.js';
import { type WaitingFor, waitForInbox } from './wait-for-inbox.js';
import type { Clock } from '../internal/clock.js';
import type { WaitGauge } from '../internal/wait-gauge.js';
import type { DeliveryObserver } from '../pipeline/delivery-observer.js';
import type { HistoryRuntime } from '../history/history-runtime.js';
import {
  type ExplainOptions,
  type ExplainSources,
  type Explanation,
  explainKey,
  explainMessage,
  type MessageExplanation,
} from '../history/explain.js';
import { PipelineBuilder } from '../pipeline/compose.js';
import type { DeliveryContext, HandlerContext, Route } from '../pipeline/context.js';
import { KeyedLimiter } from '../pipeline/keyed-limiter.js';
import { withTransaction } from '../pipeline/narrow.js';
import { inboxStage } from '../pipeline/stages/inbox-stage.js';
import { BatchCollector } from '../pipeline/batch-collector.js';
import { GroupCommitter } from '../inbox/group-committer.js';
import type { InboxCommonConfig, InboxStore } from '../inbox/inbox-store.js';
import { decodeStage } from '../pipeline/stages/decode-stage.js';
import { derivedId, invokeHandler, type Outbound } from '../pipeline/stages/invoke-handler.js';
import { dropStage } from '../pipeline/stages/drop-stage.js';
import { retryStage } from '../pipeline/stages/retry-stage.js';
import { retryStateHeaders } from '../retry/retry-state.js';
import { withoutRetryState } from '../transport/headers.js';
import { type PartitionKeyOf, scheduleStage } from '../pipeline/stages/schedule-stage.js';
import { type UnknownTypePolicy, validateStage } from '../pipeline/stages/validate-stage.js';
import { MessageRejected } from '../contracts/message-rejected.js';
import type { FaultDetails } from '../errors/fault.js';
import type { Delivery } from '../transport/delivery.js';
import type { DeadLetterQueue } from '../transport/dead-letter-queue.js';
import type { EndpointTopology, Transport } from '../transport/transport.js';
import type { BusConfig, EndpointConfig } from './config-schema.js';
import { Endpoint, type EndpointCounters, type EndpointState } from './endpoint.js';
import type { ConsumerView } from './consumer-supervisor.js';
import { EndpointBuilder, type EndpointRegistration } from './endpoint-builder.js';
import type { EndpointOptions } from './create-bus.js';
import { createHealthHandler } from '../health/health-handler.js';
import { createTokenAuthorizer, tokenDigest } from '../health/token-authorizer.js';
import { JobRegistry } from '../admin/job-registry.js';
import { withAdmin } from '../admin/with-admin.js';
import { safeError } from '../telemetry/safe-error.js';
import { type HealthServer, startHealthServer } from '../health/health-server.js';
import { KillSwitch, type KillSwitchControl, type KillSwitchView } from '../killswitch/kill-switch.js';
import { gateInputStage } from '../pipeline/stages/gate-input-stage.js';
import { gateStage } from '../pipeline/stages/gate-stage.js';
import { orderingStage } from '../pipeline/stages/ordering-stage.js';
import { cleanupTombstones } from './cleanup-tombstones.js';
import { type BusEventListener, type BusEventName, type BusEvents, EventHub } from '../telemetry/events.js';
import { observeBus } from './bus-metrics.js';
import { EndpointTelemetry } from '../pipeline/endpoint-telemetry.js';
import { ProducerTelemetry } from '../telemetry/producer-telemetry.js';
import { type TraceFields, traceHeaders } from '../telemetry/trace-context.js';
import { traceStage } from '../pipeline/stages/trace-stage.js';

/** How long a delivery another consumer is processing waits before it comes back. */
const BUSY_RETRY_MS = 1_000;
/**
 * What `stop()` may take beyond `shutdown.timeoutMs`, whatever the broker and the database do:
 * pausing and closing the consumers, stopping the outbox's relay (dispatches in progress get a
 * moment), closing the transport, the inbox store (which closes the sockets of connections still in
 * use) and the health server, each within its own share.
 */
export const STOP_MARGIN_MS = 5_000;
const STOP_SHARES = { endpoints: 1_500, outbox: 800, transport: 800, inbox: 1_700, health: 200 } as const;
/** One cleanup run deletes at most this many batches, then waits for the next interval. */
const MAX_CLEANUP_ROUNDS = 100;

export type BusState = 'created' | 'starting' | 'started' | 'stopping' | 'stopped';

/** A point-in-time view of the bus for health checks and dashboards. */
export interface BusHealth {
  readonly state: BusState;
  /** While `start()` waits for a dependency (the inbox store): what, since when, and why it is not ready. */
  readonly waitingFor?: WaitingFor;
  readonly transport: { readonly kind: string; readonly state: string };
  readonly endpoints: Readonly<
    Record<
      string,
      {
        readonly state: EndpointState;
        readonly inFlight: number;
        readonly counters: EndpointCounters;
        readonly killSwitch: KillSwitchView;
        /** Consuming, or since when and why not (restarting after it stopped, reconnecting). */
        readonly consumer: ConsumerView;
      }
    >
  >;
  /** The outbox, when the bus has one: depth, age of the oldest waiting row, rows moved aside. */
  readonly outbox?: OutboxView;
}

/** What `bus.transaction(work)` hands the work: the store's transaction, and publish/send into the outbox. */
export interface TransactionScope<TTx> {
  /** The store's transaction: write your effect through it. */
  readonly tx: TTx;
  /** Publishes an event when the transaction commits; resolves to its id once it is written. */
  publish<C extends MessageContract>(contract: C, data: MessageInputOf<C>, options?: EnvelopeOptions): Promise<string>;
  /** Sends a command to one endpoint when the transaction commits (as `publish`). */
  send<C extends MessageContract>(
    endpoint: string,
    contract: C,
    data: MessageInputOf<C>,
    options?: EnvelopeOptions,
  ): Promise<string>;
}

/** Everything the bus is built from; assembled and validated by `createBus`. */
export interface BusParts {
  readonly config: BusConfig;
  readonly transport: Transport;
  /** The inbox store and its common settings, when the bus has one. */
  readonly inbox: { readonly store: InboxStore<unknown>; readonly config: InboxCommonConfig } | undefined;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly codec: EnvelopeCodec;
  readonly registrations: Map<string, EndpointRegistration>;
  /** Validates code-given endpoint options merged with config; throws ConfigError naming the field. */
  readonly resolveEndpoint: (name: string, options: object) => EndpointRegistration;
  /** Counts deliveries that wait (for time, or for another delivery) rather than work: `sluice/testing`. */
  readonly waits?: WaitGauge;
  /** Sees each delivery leave its endpoint with its settled outcome: `sluice/testing`. */
  readonly observer?: DeliveryObserver;
  /** The history of each key beside the inbox (docs/explain.md); undefined without one. */
  readonly history?: HistoryRuntime | undefined;
}

/**
 * The composition root: owns the transport and the endpoints, publishes and sends, and runs the
 * lifecycle (start, graceful stop on signals). Create it with `createBus`.
 */
export class Bus<TTx = undefined> {
  #state: BusState = 'created';
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #signalHandlers = new Map<NodeJS.Signals, () => void>();
  #stopping: Promise<void> | undefined;
  readonly #killSwitches = new Map<string, KillSwitch>();
  readonly #events = new EventHub<BusEvents>((error, event) =>
    this.parts.logger.error({ err: error, event }, 'an event listener failed'),
  );
  #healthServer: HealthServer | undefined;
  /** The admin API's jobs (redrive, purge), when the console is on. */
  #jobs: JobRegistry | undefined;
  readonly #producer = new ProducerTelemetry(() => this.parts.transport.kind);
  #unobserve: (() => void) | undefined;
  #keepAlive: NodeJS.Timeout | undefined;
  /** Aborted by `stop()` during `start()`: ends the wait for the inbox store. */
  readonly #startAbort = new AbortController();
  #starting: Promise<void> | undefined;
  #waitingFor: BusHealth['waitingFor'];
  /** The outbox, when the inbox store has one and `outbox.enabled`. */
  readonly #outbox: Outbox | undefined;

  constructor(private readonly parts: BusParts) {
    const store = parts.inbox?.store;
    if (store?.outbox && parts.config.outbox.enabled) {
      const instanceId = randomUUID();
      this.#outbox = new Outbox({
        store: store.outbox({ table: parts.config.outbox.table, instanceId }),
        instanceId,
        transport: parts.transport,
        contentType: parts.codec.contentType,
        config: parts.config.outbox,
        logger: parts.logger.child({ component: 'outbox' }),
        clock: parts.clock,
        onBrokerFailure: (endpoint, error) => this.#brokerFailed(endpoint, error),
      });
    }
  }

  /** A row a handler of `endpoint` wrote could not go to the broker: its kill switch counts a dependency failure. */
  #brokerFailed(endpoint: string | undefined, error: unknown): void {
    const registration = endpoint === undefined ? undefined : this.parts.registrations.get(endpoint);
    if (!registration || this.#state !== 'started') return;
    this.#killSwitchOf(registration).observe(
      Admission.unadmitted,
      { kind: 'released', reason: 'dependency', delayMs: 0, headers: {}, dependency: 'broker (outbox)', error },
      undefined,
    );
  }

  get state(): BusState {
    return this.#state;
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
    if (this.#state !== 'created')
      throw new LifecycleError(`handlers must be registered before start (bus is ${this.#state})`);
  }

  /**
   * Starts the health server (when enabled), waits for the inbox store to answer (up to the store's
   * `startupWaitMs`, with backoff, saying in the logs what it waits for; readiness reports
   * not-ready meanwhile), connects, declares every endpoint's topology, then starts consuming. On
   * failure everything started is closed again and the bus is `stopped`; `stop()` may still be called.
   */
  start(): Promise<void> {
    if (this.#state !== 'created') return Promise.reject(new LifecycleError(`bus already ${this.#state}`));
    this.#starting = this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.#state = 'starting';
    const { transport, config, logger } = this.parts;
    for (const name of Object.keys(config.endpoints)) {
      if (!this.parts.registrations.has(name)) {
        this.#state = 'created';
        const known = [...this.parts.registrations.keys()].join(', ') || '(none)';
        throw new RegistrationError(
          `endpoints.${name}: configured, but no endpoint "${name}" is declared in code; declared: ${known}`,
        );
      }
    }
    try {
      // First, so that liveness and readiness answer (not ready) while the bus waits for the store.
      if (config.health.enabled) this.#healthServer = await this.#startHealth();
      if (this.parts.inbox) {
        await waitForInbox(this.parts.inbox, {
          logger,
          signal: this.#startAbort.signal,
          onWaiting: (waiting) => {
            this.#waitingFor = waiting;
          },
        });
        // The history's table, when an endpoint keeps history (off by default).
        if (this.#anyHistory()) await this.parts.history?.init();
      }
      await transport.connect();
      // The outbox's table, then its relay: rows a crash left behind go out before new work comes in.
      await this.#outbox?.start();
      for (const registration of this.parts.registrations.values()) {
        if (registration.routes.size === 0) {
          throw new RegistrationError(`endpoint "${registration.name}" has no handlers`);
        }
        await transport.declare(topologyOf(registration));
      }
      for (const registration of this.parts.registrations.values()) {
        const endpoint = this.#buildEndpoint(registration);
        this.#endpoints.set(registration.name, endpoint);
        await endpoint.start(transport);
      }
    } catch (error) {
      this.#waitingFor = undefined;
      await this.#closeAll(0);
      this.#state = 'stopped';
      throw error;
    }
    this.#installSignalHandlers();
    // A started bus is a server: it keeps the process alive until stopped, whatever the transport
    // (the memory transport holds no socket, and its timers do not keep a process alive).
    this.#keepAlive = setInterval(() => {}, 2 ** 31 - 1);
    this.#scheduleInboxCleanup();
    this.#unobserve = observeBus(transport.kind, this);
    this.#state = 'started';
    logger.info({ transport: transport.kind, endpoints: [...this.#endpoints.keys()] }, 'bus started');
  }

  #buildEndpoint(registration: EndpointRegistration): Endpoint {
    const { config, name } = registration;
    const { clock, waits } = this.parts;
    const info = { name, address: config.address ?? name, clock };
    const logger = this.parts.logger.child({ endpoint: name });
    const limiter = new KeyedLimiter(config.concurrency, waits);
    // Brokers that order by partition or session promise per-key order, so the endpoint keeps it by default.
    const byKey = config.orderBy === 'key' || this.parts.transport.capabilities.ordering !== 'none';
    const keyOf: PartitionKeyOf | undefined =
      registration.partitionKey ?? (byKey ? (env, partitionKey) => env.key ?? partitionKey : undefined);
    const outbound: Outbound = {
      publish: async (contract, data, options, outbox, source) => {
        if (outbox) await this.#stage(outbox, 'publish', contract.type, contract, data, options, source);
        else await this.publish(contract, data as never, options);
      },
      send: async (to, contract, data, options, outbox, source) => {
        if (outbox) await this.#stage(outbox, 'send', this.#addressOf(to), contract, data, options, source);
        else await this.send(to, contract, data as never, options);
      },
    };
    const address = info.address;
    const endpointInbox = config.inbox ? this.parts.inbox : undefined;
    const history = endpointInbox && this.#keepsHistory(registration) ? this.parts.history : undefined;
    const outbox = endpointInbox && config.outbox ? this.#outbox : undefined;
    const committer =
      endpointInbox && config.groupCommit
        ? new GroupCommitter(endpointInbox.store, config.groupCommit, { clock, waits, flush: history?.flush })
        : undefined;
    const batches = new Map<Route, BatchCollector>();
    for (const route of registration.routes.values()) {
      if (!route.batch) continue;
      const store = endpointInbox
        ? { store: endpointInbox.store, storeEnvelope: endpointInbox.config.storeEnvelope }
        : undefined;
      batches.set(
        route,
        new BatchCollector(route.batch.handler, route.batch, store, {
          clock,
          waits,
          outbound,
          outbox,
          history: history?.tapFor(name),
        }),
      );
    }
    const unknownTypes: UnknownTypePolicy =
      config.unknownTypes === 'skippedQueue'
        ? { kind: 'skippedQueue', address: skippedAddressOf(config, name) }
        : { kind: config.unknownTypes };
    const killSwitch = this.#killSwitchOf(registration);
    const telemetry = new EndpointTelemetry({ endpoint: name, address, system: this.parts.transport.kind });
    const run = PipelineBuilder.start<DeliveryContext>()
      .use(gateInputStage(killSwitch))
      .use(
        decodeStage(this.parts.codec, config.maxBodyBytes, {
          storeEnvelope: endpointInbox?.config.storeEnvelope ?? false,
        }),
      )
      .use(traceStage(telemetry))
      .use(dropStage(registration.routes))
      .use(validateStage(registration.routes, unknownTypes))
      .use(scheduleStage(limiter, keyOf))
      .use(gateStage(killSwitch))
      .use(
        retryStage({
          clock,
          waits,
          inProcessMaxDelayMs: config.inProcessRetryMaxDelayMs,
          retryState: retryStateHeaders({
            key: this.parts.config.retrySigningKey,
            service: this.parts.config.service,
            endpoint: name,
          }),
          dependencyBackoff: config.dependencyBackoffMs,
          retryLater: config.retryLater,
        }),
      )
      .use<HandlerContext>(
        endpointInbox
          ? inboxStage(
              committer
                ? (entry, work) => committer.submit(entry, work)
                : (entry, work) => endpointInbox.store.runOnce(entry, work),
              {
                storeEnvelope: endpointInbox.config.storeEnvelope,
                busyRetryMs: BUSY_RETRY_MS,
                outbox,
                history: history?.tapFor(name),
                deferHistory: committer !== undefined,
              },
            )
          : (ctx, next) => next(withTransaction(ctx, undefined)),
      )
      .use(
        orderingStage({
          endpoint: name,
          routes: registration.routes,
          store: endpointInbox?.store,
          clock,
        }),
      )
      .end(invokeHandler(outbound, batches));
    const { rejectionAddress } = config;
    return new Endpoint({
      info,
      prefetch: config.prefetch ?? Math.max(2, config.concurrency * 2),
      run,
      limiter,
      logger,
      telemetry,
      supervision: {
        // A consumer made again after it stopped (its queue deleted, say) declares what it needs first.
        prepare: () => this.parts.transport.declare(topologyOf(registration)),
        config: config.consumerRestart,
        clock,
        emit: (event, change) => this.#events.emit(event, change),
      },
      waits,
      observer: history ? history.observerFor(name, this.parts.observer) : this.parts.observer,
      forward: (to, delivery, headers, messageId) =>
        this.parts.transport.send(to, {
          messageId: messageId ?? delivery.deliveryId,
          body: delivery.body,
          // A new message: the delivery's retry state and count stay behind.
          headers: { ...withoutRetryState(delivery.headers), ...headers },
          contentType: this.parts.codec.contentType,
          key: delivery.partitionKey,
          messageType: '',
        }),
      onBadInput:
        rejectionAddress === undefined
          ? undefined
          : (fault, delivery) => this.#reject(rejectionAddress, name, fault, delivery),
    });
  }

  /** Sends a rejection notice; its id is derived from the rejected message so a redelivery repeats it. */
  async #reject(address: string, endpoint: string, fault: FaultDetails, delivery: Delivery): Promise<void> {
    const subject = fault.messageId ?? createHash('sha256').update(delivery.body).digest('hex');
    await this.send(
      address,
      MessageRejected,
      {
        messageId: fault.messageId,
        messageType: fault.messageType,
        endpoint,
        reason: fault.reason,
        description: fault.description,
        rejectedAt: fault.lastFailureAt,
      },
      { id: derivedId(subject, endpoint, 0), causationId: fault.messageId },
    );
  }

  /** Publishes an event to every endpoint that handles its type. Resolves once the broker has it. */
  async publish<C extends MessageContract>(
    contract: C,
    data: MessageInputOf<C>,
    options: EnvelopeOptions = {},
  ): Promise<string> {
    return this.#producer.run('publish', contract.type, async (trace) => {
      const message = this.#outgoing(contract, data, options, trace);
      await this.parts.transport.publish(message);
      return message;
    });
  }

  /** Sends a command to one endpoint: a local endpoint's name, or any broker address. */
  async send<C extends MessageContract>(
    endpoint: string,
    contract: C,
    data: MessageInputOf<C>,
    options: EnvelopeOptions = {},
  ): Promise<string> {
    const address = this.#addressOf(endpoint);
    return this.#producer.run('send', address, async (trace) => {
      const message = this.#outgoing(contract, data, options, trace);
      await this.parts.transport.send(address, message);
      return message;
    });
  }

  /** The broker address of a local endpoint's name; anything else is an address already. */
  #addressOf(endpoint: string): string {
    return this.parts.registrations.get(endpoint)?.config.address ?? endpoint;
  }

  /**
   * Builds and checks a message now (a bad one throws here, at the call, as an immediate publish
   * would) and appends it to `outbox`, to be written in the caller's transaction.
   */
  #stage(
    outbox: OutboxMessage[],
    kind: 'publish' | 'send',
    destination: string,
    contract: MessageContract,
    data: unknown,
    options: EnvelopeOptions,
    source: string | undefined,
  ): Promise<string> {
    return this.#producer.run(kind, destination, async (trace) => {
      const message = this.#outgoing(contract, data, options, trace);
      outbox.push(outboxMessageOf(message, kind, destination, source, options.causationId));
      return message;
    });
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
  async transaction<R>(work: (scope: TransactionScope<TTx>) => Promise<R>): Promise<R> {
    const store = this.parts.inbox?.store;
    const outbox = this.#outbox;
    if (!store?.transaction || !outbox) {
      throw new ConfigError([
        !store
          ? "bus.transaction needs an inbox store, whose database holds the outbox: createBus(config, { inbox: postgresInbox() }) from 'sluice/postgres' (or sqliteInbox(), memoryInbox())"
          : !this.parts.config.outbox.enabled
            ? 'outbox.enabled: bus.transaction needs the outbox, and it is off'
            : `bus.transaction: the inbox store "${store.kind}" has no outbox or no transactions`,
      ]);
    }
    if (this.#state !== 'started') {
      throw new LifecycleError(`bus.transaction needs a started bus (bus is ${this.#state})`);
    }
    const outgoing: OutboxMessage[] = [];
    let written: Written | undefined;
    const result = await store.transaction(async (tx) => {
      outgoing.length = 0;
      const scope: TransactionScope<TTx> = {
        tx: tx as TTx,
        publish: (contract, data, options = {}) =>
          this.#stage(outgoing, 'publish', contract.type, contract, data, options, undefined),
        send: (endpoint, contract, data, options = {}) =>
          this.#stage(outgoing, 'send', this.#addressOf(endpoint), contract, data, options, undefined),
      };
      const value = await work(scope);
      written = outgoing.length > 0 ? await outbox.write(tx, outgoing) : undefined;
      return value;
    });
    // Committed: the rows go out now, in process, without holding the caller (a broker that is down
    // must not slow the work that wrote them; the relay retries).
    if (written) void outbox.afterCommit(written);
    return result;
  }

  /** The outbox, when the bus has one (its store's rows, for tools and tests). */
  get outbox(): Outbox | undefined {
    return this.#outbox;
  }

  #outgoing(
    contract: MessageContract,
    data: unknown,
    options: EnvelopeOptions & OutgoingOptions,
    trace: TraceFields | undefined,
  ) {
    if (this.#state !== 'started' && this.#state !== 'stopping') {
      throw new LifecycleError(`cannot send before the bus has started (bus is ${this.#state})`);
    }
    const parsed = contract.schema.safeParse(data);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `data.${i.path.join('.')}: ${i.message}`).join('; ');
      throw new InvalidOutgoingMessageError(`${contract.type}: ${problems}`);
    }
    let created: Envelope;
    try {
      // Stamped on the bus's clock, so that a manual clock's consumers do not see it in the future.
      const stamped =
        options.occurredAt === undefined ? { ...options, occurredAt: new Date(this.parts.clock.now()) } : options;
      created = createEnvelope(contract.type, this.parts.config.service, parsed.data, stamped);
    } catch (error) {
      // createEnvelope's TypeError: an occurredAt string that breaks the timestamp rule.
      if (!(error instanceof TypeError)) throw error;
      throw new InvalidOutgoingMessageError(`${contract.type}: ${error.message}`, { cause: error });
    }
    // The producer span's context travels in the envelope (CloudEvents tracing extension) and headers.
    const envelope = trace === undefined ? created : { ...created, ...trace };
    return {
      messageId: envelope.id,
      // The consumer's envelope rules (id, key, correlation ids, ...) checked here: a message its
      // consumers would dead-letter as invalid-envelope fails the publish instead.
      body: encodeOutgoing(this.parts.codec, envelope),
      headers: traceHeaders(trace),
      contentType: this.parts.codec.contentType,
      key: envelope.key,
      messageType: envelope.type,
    };
  }

  /** The effective settings of a declared endpoint: code options overridden by configuration. */
  endpointSettings(endpoint: string): EndpointConfig {
    const registration = this.parts.registrations.get(endpoint);
    if (!registration) throw new RegistrationError(`no endpoint "${endpoint}" is declared`);
    return registration.config;
  }

  /** The dead-letter queue of a declared endpoint. */
  deadLetters(endpoint: string): DeadLetterQueue {
    const registration = this.parts.registrations.get(endpoint);
    if (!registration) throw new RegistrationError(`no endpoint "${endpoint}" is declared`);
    return this.parts.transport.deadLetters(registration.config.address ?? endpoint);
  }

  /** The kill switch of a declared endpoint: state and view, `trip(reason)`, `reset()`. */
  killSwitch(endpoint: string): KillSwitchControl {
    const registration = this.parts.registrations.get(endpoint);
    if (!registration) throw new RegistrationError(`no endpoint "${endpoint}" is declared`);
    return this.#killSwitchOf(registration);
  }

  /** Subscribes to a bus event (`BusEvents`: `killswitch.tripped`, ...); returns the unsubscribe function. */
  on<E extends BusEventName>(event: E, listener: BusEventListener<E>): () => void {
    return this.#events.on(event, listener);
  }

  /** The health server, when `health.enabled` and the bus has started. */
  get healthServer(): HealthServer | undefined {
    return this.#healthServer;
  }

  #killSwitchOf(registration: EndpointRegistration): KillSwitch {
    const { name } = registration;
    let killSwitch = this.#killSwitches.get(name);
    if (!killSwitch) {
      killSwitch = new KillSwitch({
        endpoint: name,
        config: registration.config.killSwitch,
        clock: this.parts.clock,
        logger: this.parts.logger.child({ endpoint: name }),
        emit: (event, payload) => this.#events.emit(event, payload),
        consumer: () => {
          const endpoint = this.#endpoints.get(name);
          return endpoint?.state === 'running' ? endpoint : undefined;
        },
        waits: this.parts.waits,
      });
      this.#killSwitches.set(name, killSwitch);
    }
    return killSwitch;
  }

  async #startHealth(): Promise<HealthServer> {
    const { health } = this.parts.config;
    const logger = this.parts.logger.child({ component: 'health' });
    const authorizer = createTokenAuthorizer({
      admin: health.token ? tokenDigest(health.token) : undefined,
      read: health.readToken ? tokenDigest(health.readToken) : undefined,
    });
    let handler = createHealthHandler(this, { ...health, authorizer, logger });
    // The operator console shares the server and its token model; it is on only with a token.
    if (health.admin.enabled && (authorizer.hasAdminToken || authorizer.hasReadToken)) {
      this.#jobs = new JobRegistry({ clock: this.parts.clock, describeError: (e) => safeError(e).message });
      handler = withAdmin(this, handler, {
        authorizer,
        jobs: this.#jobs,
        basePath: health.basePath,
        scanLimit: health.admin.scanLimit,
        requestTimeoutMs: health.requestTimeoutMs,
        console: health.admin.console,
        logger: this.parts.logger.child({ component: 'admin' }),
      });
    }
    const server = await startHealthServer(handler, { ...health, logger });
    logger.info({ listening: server.url }, 'health server listening');
    return server;
  }

  health(): BusHealth {
    const endpoints: Record<string, BusHealth['endpoints'][string]> = {};
    for (const [name, e] of this.#endpoints)
      endpoints[name] = {
        state: e.state,
        inFlight: e.inFlight,
        counters: { ...e.counters, skippedByReason: { ...e.counters.skippedByReason } },
        killSwitch: this.killSwitch(name).view(),
        consumer: e.consumer,
      };
    return {
      state: this.#state,
      ...(this.#waitingFor ? { waitingFor: this.#waitingFor } : {}),
      transport: { kind: this.parts.transport.kind, state: this.parts.transport.state },
      endpoints,
      ...(this.#outbox ? { outbox: this.#outbox.view() } : {}),
    };
  }

  /**
   * Graceful stop: endpoints stop taking work, running handlers get `shutdown.timeoutMs`, what is
   * left goes back to the broker, then the transport, the inbox store and the health server close.
   * Returns within `shutdown.timeoutMs` + {@link STOP_MARGIN_MS} whatever the broker, the database
   * or the handlers do. Idempotent; concurrent calls share one stop. After a failed `start()` it
   * resolves at once; during `start()` it ends the wait for the store and resolves once `start()`
   * has failed and cleaned up.
   */
  stop(): Promise<void> {
    if (this.#state === 'created') {
      this.#state = 'stopped';
      return Promise.resolve();
    }
    if (this.#state === 'starting') {
      this.#startAbort.abort(new LifecycleError('stopped while starting'));
      this.#stopping ??= (this.#starting ?? Promise.resolve()).then(
        () => this.#stop(),
        () => undefined,
      );
      return this.#stopping;
    }
    if (this.#state === 'stopped' && this.#stopping === undefined) return Promise.resolve();
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#state = 'stopping';
    this.#removeSignalHandlers();
    clearInterval(this.#keepAlive);
    for (const killSwitch of this.#killSwitches.values()) killSwitch.close();
    // Running redrives and purges stop after their current chunk (what was moved stays moved).
    void this.#jobs?.close();
    this.#cancelCleanup?.();
    this.#unobserve?.();
    await this.#closeAll(this.parts.config.shutdown.timeoutMs);
    this.#state = 'stopped';
    this.parts.logger.info('bus stopped');
  }

  /**
   * Stops the endpoints (handlers get `timeoutMs`), then closes the transport, the inbox store and
   * the health server: each step within its share of {@link STOP_MARGIN_MS}, so that a broker or
   * database that does not answer cannot hold the stop.
   */
  #closeAll(timeoutMs: number): Promise<void> {
    const endpoints = [...this.#endpoints.values()];
    return closeWithin(
      [
        {
          what: 'endpoints',
          close: () => Promise.all(endpoints.map((e) => e.stop(timeoutMs))),
          withinMs: timeoutMs + STOP_SHARES.endpoints,
        },
        // Before the transport: dispatches in progress may finish; what is left stays in the table.
        { what: 'outbox', close: () => this.#outbox?.stop(), withinMs: STOP_SHARES.outbox },
        { what: 'transport', close: () => this.parts.transport.close(), withinMs: STOP_SHARES.transport },
        {
          what: 'inbox store',
          // The dead letters' history rows being written go first, within the same share.
          close: async () => {
            await this.parts.history?.drain();
            await this.parts.inbox?.store.close();
          },
          withinMs: STOP_SHARES.inbox,
        },
        { what: 'health server', close: () => this.#healthServer?.close(), withinMs: STOP_SHARES.health },
      ],
      this.parts.logger,
    );
  }

  /** The inbox of the bus: look up what was processed ("why is this entity in this state?"). */
  get inbox(): InboxStore<TTx> | undefined {
    return this.parts.inbox?.store as InboxStore<TTx> | undefined;
  }

  /**
   * Deletes inbox rows older than the retention, in bounded batches (never one long statement).
   * Runs every `cleanupIntervalMs` while the bus runs; returns how many rows went.
   */
  async cleanupInbox(): Promise<number> {
    const inbox = this.parts.inbox;
    if (!inbox) return 0;
    const olderThan = new Date(this.parts.clock.now() - inbox.config.retentionMs);
    let total = 0;
    for (let round = 0; round < MAX_CLEANUP_ROUNDS; round++) {
      const deleted = await inbox.store.cleanup(olderThan, inbox.config.cleanupBatchSize);
      total += deleted;
      if (deleted < inbox.config.cleanupBatchSize) break;
    }
    total += await cleanupTombstones(
      inbox.store,
      this.parts.registrations.values(),
      this.parts.clock.now(),
      inbox.config.cleanupBatchSize,
      MAX_CLEANUP_ROUNDS,
    );
    // Its table exists only when an endpoint keeps history.
    if (this.#anyHistory()) total += (await this.parts.history?.cleanup()) ?? 0;
    return total;
  }

  #anyHistory(): boolean {
    return [...this.parts.registrations.values()].some((r) => this.#keepsHistory(r));
  }

  /** Whether an endpoint keeps the history of its keys: its `history`, else `history.enabled`; with an inbox only. */
  #keepsHistory(registration: EndpointRegistration): boolean {
    if (!registration.config.inbox || !this.parts.inbox || !this.parts.history) return false;
    return registration.config.history ?? this.parts.config.history.enabled;
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
    return explainKey(this.#explainSources(options.endpoint), key, options);
  }

  /** Where one message went, on every endpoint of this bus: its history rows and its dead letters. */
  async explainMessage(messageId: string): Promise<MessageExplanation> {
    return explainMessage(this.#explainSources(undefined), messageId);
  }

  #explainSources(endpoint: string | undefined): ExplainSources {
    if (endpoint !== undefined && !this.parts.registrations.has(endpoint)) {
      throw new RegistrationError(`no endpoint "${endpoint}" is declared`);
    }
    const registrations = [...this.parts.registrations.values()].filter(
      (r) => endpoint === undefined || r.name === endpoint,
    );
    return {
      history: this.parts.history,
      endpoints: registrations.map((r) => ({ name: r.name, history: this.#keepsHistory(r) })),
      deadLetters: (name) => this.deadLetters(name),
      codec: this.parts.codec,
      scanLimit: this.parts.config.history.deadLetterScanLimit,
      describeError: (error) => safeError(error).message,
    };
  }

  #cancelCleanup: (() => void) | undefined;

  #scheduleInboxCleanup(): void {
    const inbox = this.parts.inbox;
    if (!inbox) return;
    this.#cancelCleanup = this.parts.clock.setTimer(() => {
      this.cleanupInbox()
        .then((deleted) => {
          if (deleted > 0) this.parts.logger.info({ deleted }, 'inbox cleanup');
        })
        .catch((error: unknown) => this.parts.logger.warn({ err: error }, 'inbox cleanup failed'))
        .finally(() => {
          if (this.#state === 'started') this.#scheduleInboxCleanup();
        });
    }, inbox.config.cleanupIntervalMs);
  }

  #installSignalHandlers(): void {
    for (const signal of this.parts.config.shutdown.signals) {
      const handler = () => {
        this.parts.logger.info({ signal }, 'stopping on signal');
        this.stop().then(
          () => {
            // Exit only when nobody else listens for the signal; otherwise the application decides.
            if (process.listenerCount(signal) === 0) process.exit(0);
          },
          (error: unknown) => {
            this.parts.logger.error({ err: error }, 'graceful stop failed');
            process.exit(1);
          },
        );
      };
      this.#signalHandlers.set(signal, handler);
      process.once(signal, handler);
    }
  }

  #removeSignalHandlers(): void {
    for (const [signal, handler] of this.#signalHandlers) process.removeListener(signal, handler);
    this.#signalHandlers.clear();
  }
}

/** The outbox row of a message built by `#outgoing`. */
function outboxMessageOf(
  message: OutgoingMessage,
  kind: 'publish' | 'send',
  destination: string,
  source: string | undefined,
  causationId: string | undefined,
): OutboxMessage {
  return {
    messageId: message.messageId,
    destinationKind: kind,
    destination,
    messageType: message.messageType,
    key: message.key,
    headers: message.headers,
    body: message.body,
    sourceEndpoint: source,
    causationId,
  };
}

/** Where `unknownTypes: 'skippedQueue'` moves an endpoint's unknown types: `skippedAddress`, else `<address>.skipped`. */
function skippedAddressOf(config: EndpointConfig, name: string): string {
  return config.skippedAddress ?? `${config.address ?? name}.skipped`;
}

function topologyOf(registration: EndpointRegistration): EndpointTopology {
  const { config, name } = registration;
  return {
    address: config.address ?? name,
    endpoint: name,
    messageTypes: [...registration.routes.keys()],
    skippedAddress: config.unknownTypes === 'skippedQueue' ? skippedAddressOf(config, name) : undefined,
  };
}
