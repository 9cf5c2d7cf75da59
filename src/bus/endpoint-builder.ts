import type { MessageContract, MessageOf } from '../contracts/define-message.js';
import type { Handler } from '../contracts/message-context.js';
import type { BatchHandler, BatchOptions } from '../contracts/batch-context.js';
import { RegistrationError } from '../errors/sluice-error.js';
import type { Route } from '../pipeline/context.js';
import type { PartitionKeyOf } from '../pipeline/delivery-pipeline.js';
import { type RetryConfig, retryPolicyFrom } from '../retry/retry-config.js';
import type { ErrorFilter, ErrorMatcher, RetryPolicy } from '../retry/retry-policy.js';
import type { EndpointConfig } from './config-schema.js';
import type { Envelope } from '../envelope/envelope.js';
import type { TombstoneHandler } from '../contracts/tombstone-handler.js';
import { type OrderingOverride, resolveOrdering } from '../ordering/ordering-config.js';

/**
 * Per-handler options: override the endpoint's retry and ordering for this message type, pick the
 * ordering key, handle tombstones. `T` is the message type, `TTx` the inbox transaction handle.
 */
export interface HandleOptions<T = unknown, TTx = unknown> extends ErrorFilter {
  /** A retry config, or a policy function (see `sluice` `exponential`, `intervals`, ...). */
  retry?: RetryConfig | RetryPolicy;
  /**
   * Errors that mean a dependency of the handler failed, not the message (a downstream API that is
   * down): besides `DependencyError`, which always does. Such a failure spends no attempt, is never
   * dead-lettered, and counts for the kill switch as a dependency failure. Added to the endpoint's.
   */
  dependencyErrors?: readonly ErrorMatcher[];
  /**
   * Droppable messages are not worth a dead letter: when one would be dead-lettered it is completed
   * and logged at warn level instead.
   */
  drop?: boolean;
  /** Overrides the endpoint's `ordering` for this type; `false` turns the guard off for it. */
  ordering?: OrderingOverride;
  /**
   * The ordering key of a message (default: the envelope key, `subject`); `undefined`: the guard
   * does not apply to that message. Tombstones carry no message: their key is always the envelope key.
   */
  orderingKey?: (message: T, envelope: Envelope<T>) => string | undefined;
  /** Handles tombstones (deletions) of this type; the normal handler never receives one. */
  onTombstone?: TombstoneHandler<TTx>;
}

/** Options of a batch handler: no per-message ordering (only `ordering: false` to opt out of the endpoint's). */
export type BatchHandleOptions = Omit<HandleOptions, 'ordering' | 'orderingKey' | 'onTombstone'> &
  BatchOptions & { ordering?: false };

/** The registration of one endpoint, filled by `.handle` calls before `bus.start()`. */
export interface EndpointRegistration {
  readonly name: string;
  readonly config: EndpointConfig;
  readonly routes: Map<string, Route>;
  readonly partitionKey: PartitionKeyOf | undefined;
  /** The endpoint's dependency-error matchers (code only), shared by its handlers. */
  readonly dependencyErrors?: readonly ErrorMatcher[] | undefined;
}

/**
 * Registers handlers on an endpoint. Each `handle` call infers the handler's message type from the
 * contract; a handler for another type does not compile.
 *
 * @example
 * bus.endpoint('billing').handle(OrderPlaced, async (order, ctx) => { ... });
 */
export class EndpointBuilder<TTx = undefined> {
  constructor(
    private readonly registration: EndpointRegistration,
    private readonly assertOpen: () => void,
  ) {}

  handle<C extends MessageContract>(
    contract: C,
    handler: Handler<MessageOf<C>, TTx>,
    options: HandleOptions<MessageOf<C>, TTx> = {},
  ): this {
    this.assertOpen();
    const { routes, config, name } = this.registration;
    if (routes.has(contract.type)) {
      throw new RegistrationError(`endpoint "${name}" already has a handler for "${contract.type}"`);
    }
    const filter: ErrorFilter = { retryOn: options.retryOn, neverRetryOn: options.neverRetryOn };
    const retry =
      typeof options.retry === 'function' ? options.retry : retryPolicyFrom(options.retry ?? config.retry, filter);
    routes.set(contract.type, {
      contract,
      handler: handler as Handler<unknown, unknown>,
      retry,
      dependencyErrors: dependencyErrorsOf(this.registration, options),
      droppable: options.drop === true,
      ordering: resolveOrdering(config.ordering, options.ordering, `endpoints.${name} ${contract.type}`),
      orderingKey: options.orderingKey as ((message: unknown, envelope: Envelope) => string | undefined) | undefined,
      onTombstone: options.onTombstone as TombstoneHandler<unknown> | undefined,
    });
    return this;
  }

  /**
   * Registers a batch handler: up to `maxMessages` messages of the type at once, in one inbox
   * transaction (when the bus has an inbox), so the effect can be one multi-row statement.
   */
  handleBatch<C extends MessageContract>(
    contract: C,
    handler: BatchHandler<MessageOf<C>, TTx>,
    options: BatchHandleOptions = {},
  ): this {
    this.assertOpen();
    const { routes, config, name } = this.registration;
    if (routes.has(contract.type)) {
      throw new RegistrationError(`endpoint "${name}" already has a handler for "${contract.type}"`);
    }
    const maxMessages = options.maxMessages ?? 100;
    const maxWaitMs = options.maxWaitMs ?? 10;
    if (!Number.isInteger(maxMessages) || maxMessages < 1 || maxMessages > 10_000) {
      throw new RegistrationError(`${name}/${contract.type}: maxMessages must be an integer from 1 to 10000`);
    }
    if (!Number.isFinite(maxWaitMs) || maxWaitMs < 0) {
      throw new RegistrationError(`${name}/${contract.type}: maxWaitMs must be 0 or more`);
    }
    // The guard decides per message inside the message's transaction; a batch shares one
    // transaction and one handler call, so a stale message could not be left out of it.
    if (config.ordering.enabled && options.ordering !== false) {
      throw new RegistrationError(
        `${name}/${contract.type}: endpoints.${name}.ordering.enabled does not apply to batch handlers; ` +
          'register it with .handle(...), or pass { ordering: false } to handleBatch to opt this type out',
      );
    }
    const filter: ErrorFilter = { retryOn: options.retryOn, neverRetryOn: options.neverRetryOn };
    const retry =
      typeof options.retry === 'function' ? options.retry : retryPolicyFrom(options.retry ?? config.retry, filter);
    routes.set(contract.type, {
      contract,
      handler: () => {
        throw new Error('batch routes are handled by their collector');
      },
      retry,
      dependencyErrors: dependencyErrorsOf(this.registration, options),
      droppable: options.drop === true,
      ordering: { ...config.ordering, enabled: false },
      batch: { handler: handler as BatchHandler<unknown, unknown>, maxMessages, maxWaitMs },
    });
    return this;
  }
}

function dependencyErrorsOf(
  registration: EndpointRegistration,
  options: { dependencyErrors?: readonly ErrorMatcher[] | undefined },
): readonly ErrorMatcher[] | undefined {
  const all = [...(registration.dependencyErrors ?? []), ...(options.dependencyErrors ?? [])];
  return all.length > 0 ? all : undefined;
}
