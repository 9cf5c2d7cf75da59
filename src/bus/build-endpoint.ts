import type { DeliveryContext, HandlerContext, Route, ValidatedContext } from '../pipeline/context.js';
import { PipelineBuilder } from '../pipeline/compose.js';
import { BatchCollector } from '../pipeline/batch-collector.js';
import { type OutcomeMapper, type PartitionKeyOf, TAKE_TURN } from '../pipeline/delivery-pipeline.js';
import { withTransaction } from '../pipeline/narrow.js';
import type { OutcomeObserver } from '../pipeline/outcome.js';
import { decodeStage } from '../pipeline/stages/decode-stage.js';
import { dropOutcome } from '../pipeline/stages/drop-outcome.js';
import { badInputToGate, gateInputStage } from '../pipeline/stages/gate-input-stage.js';
import { gateAbandoned, gateOutcome, gateStage } from '../pipeline/stages/gate-stage.js';
import { inboxStage } from '../pipeline/stages/inbox-stage.js';
import { invokeHandler, type Outbound } from '../pipeline/stages/invoke-handler.js';
import { orderingStage } from '../pipeline/stages/ordering-stage.js';
import { retryStage } from '../pipeline/stages/retry-stage.js';
import { type UnknownTypePolicy, validateStage } from '../pipeline/stages/validate-stage.js';
import { GroupCommitter } from '../inbox/group-committer.js';
import type { KillSwitch } from '../killswitch/kill-switch.js';
import type { Outbox } from '../outbox/outbox.js';
import { retryStateHeaders } from '../retry/retry-state.js';
import { EndpointTelemetry } from '../pipeline/endpoint-telemetry.js';
import type { BusEvents } from '../telemetry/events.js';
import { activateSpanStage, traceStage } from '../pipeline/stages/trace-stage.js';
import { withoutRetryState } from '../transport-core/headers.js';
import type { BusParts } from './bus-parts.js';
import type { BusProducer } from './bus-producer.js';
import { Endpoint } from './endpoint.js';
import type { EndpointRegistration } from './endpoint-builder.js';
import { skippedAddressOf, topologyOf } from './endpoint-topology.js';
import { RejectionNotices } from './rejection-notices.js';

/** How long a delivery another consumer is processing waits before it comes back. */
const BUSY_RETRY_MS = 1_000;

/** What the bus gives each endpoint it builds. */
export interface EndpointDeps {
  readonly parts: BusParts;
  /** The handlers' publishes and sends go through it (or into the outbox list it stages to). */
  readonly producer: BusProducer;
  /** The bus's outbox, when it has one. */
  readonly outbox: Outbox | undefined;
  readonly killSwitch: KillSwitch;
  /** The endpoint keeps the history of its keys (docs/explain.md). */
  readonly keepsHistory: boolean;
  readonly emit: <E extends keyof BusEvents>(event: E, payload: BusEvents[E]) => void;
}

/**
 * Makes one endpoint from its registration: composes its pipeline once (the stages in the order of
 * docs/architecture.md), its batch collectors and group committer, and its outcome observers.
 */
export function buildEndpoint(registration: EndpointRegistration, deps: EndpointDeps): Endpoint {
  const { parts, producer, outbox: busOutbox, killSwitch, keepsHistory, emit } = deps;
  const { config, name } = registration;
  const { clock, waits } = parts;
  const info = { name, address: config.address ?? name, clock };
  const logger = parts.logger.child({ endpoint: name });
  // Brokers that order by partition or session promise per-key order, so the endpoint keeps it by default.
  const byKey = config.orderBy === 'key' || parts.transport.capabilities.ordering !== 'none';
  const keyOf: PartitionKeyOf | undefined =
    registration.partitionKey ?? (byKey ? (env, partitionKey) => env.key ?? partitionKey : undefined);
  const outbound: Outbound = {
    publish: async (contract, data, options, outbox, source) => {
      if (outbox) await producer.stage(outbox, 'publish', contract.type, contract, data, options, source);
      else await producer.publish(contract, data as never, options);
    },
    send: async (to, contract, data, options, outbox, source) => {
      if (outbox) await producer.stage(outbox, 'send', producer.addressOf(to), contract, data, options, source);
      else await producer.send(to, contract, data as never, options);
    },
  };
  const address = info.address;
  const endpointInbox = config.inbox ? parts.inbox : undefined;
  const history = endpointInbox && keepsHistory ? parts.history : undefined;
  const outbox = endpointInbox && config.outbox ? busOutbox : undefined;
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
  const telemetry = new EndpointTelemetry({ endpoint: name, address, system: parts.transport.kind });
  // Before the turn: what decides a delivery without a slot (bad input, a tripped switch).
  const head = PipelineBuilder.start<DeliveryContext>()
    .use(gateInputStage(killSwitch))
    .use(
      decodeStage(parts.codec, config.maxBodyBytes, {
        storeEnvelope: endpointInbox?.config.storeEnvelope ?? false,
      }),
    )
    .use(traceStage(telemetry))
    .use(validateStage(registration.routes, unknownTypes))
    .end(() => TAKE_TURN);
  // The turn: when a slot and the message's key are free.
  const turn = PipelineBuilder.start<ValidatedContext>()
    .use(activateSpanStage())
    .use(gateStage(killSwitch))
    .use(
      retryStage({
        clock,
        waits,
        inProcessMaxDelayMs: config.inProcessRetryMaxDelayMs,
        retryState: retryStateHeaders({
          key: parts.config.retrySigningKey,
          service: parts.config.service,
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
  // Applied to every outcome, in this order: the turn's outcome is shown to the kill switch (which
  // may release a failure instead), a droppable type's dead letter becomes a skip, then bad input
  // decided before admission is shown to the kill switch.
  const mappers: OutcomeMapper[] = [gateOutcome(killSwitch)];
  const drop = dropOutcome(registration.routes);
  if (drop) mappers.push(drop);
  mappers.push(badInputToGate(killSwitch));
  const { rejectionAddress } = config;
  const external = history ? history.observerFor(name, parts.observer) : parts.observer;
  // The endpoint's outcome observers, after its own counters and logs; each only when it has work.
  const observers: OutcomeObserver[] = [telemetry];
  if (rejectionAddress !== undefined) {
    observers.push(new RejectionNotices(rejectionAddress, name, (to, c, data, o) => producer.send(to, c, data, o)));
  }
  if (external) observers.push(external);
  return new Endpoint({
    info,
    prefetch: config.prefetch ?? Math.max(2, config.concurrency * 2),
    pipeline: { head, keyOf, turn, mappers, abandoned: [gateAbandoned(killSwitch)], concurrency: config.concurrency },
    logger,
    observers,
    supervision: {
      // A consumer made again after it stopped (its queue deleted, say) declares what it needs first.
      prepare: () => parts.transport.declare(topologyOf(registration)),
      config: config.consumerRestart,
      clock,
      emit,
    },
    waits,
    forward: (to, delivery, headers, messageId) =>
      parts.transport.send(to, {
        messageId: messageId ?? delivery.deliveryId,
        body: delivery.body,
        // A new message: the delivery's retry state and count stay behind.
        headers: { ...withoutRetryState(delivery.headers), ...headers },
        contentType: parts.codec.contentType,
        key: delivery.partitionKey,
        messageType: '',
      }),
  });
}
