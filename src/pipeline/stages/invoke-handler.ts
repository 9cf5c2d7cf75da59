import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { MessageContract } from '../../contracts/define-message.js';
import type { MessageContext, OutgoingOptions } from '../../contracts/message-context.js';
import type { Envelope } from '../../envelope/envelope.js';
import { DeadLetterSignal, RetryLaterSignal } from '../../retry/control-signals.js';
import type { HandlerContext, Route } from '../context.js';
import type { BatchCollector } from '../batch-collector.js';
import { COMPLETED, type Outcome } from '../outcome.js';
import type { Terminal } from '../compose.js';
import { invokeTombstone } from './invoke-tombstone.js';
import type { OutboxMessage } from '../../outbox/outbox-store.js';

/**
 * How a handler's publish and send reach the bus: with `outbox`, the message is built and checked
 * now and appended there (written to the outbox in the handler's transaction); without, it goes to
 * the broker at once.
 */
export interface Outbound {
  publish(
    contract: MessageContract,
    data: unknown,
    options: OutgoingOptions & { causationId?: string | undefined },
    outbox: OutboxMessage[] | undefined,
    source: string | undefined,
  ): Promise<void>;
  send(
    endpoint: string,
    contract: MessageContract,
    data: unknown,
    options: OutgoingOptions & { causationId?: string | undefined },
    outbox: OutboxMessage[] | undefined,
    source: string | undefined,
  ): Promise<void>;
}

/**
 * The last stage: runs the route's handler with a typed context (batch routes: via their
 * collector); a tombstone runs the route's `onTombstone` instead (see `invokeTombstone`).
 */
export function invokeHandler(
  outbound: Outbound,
  batches: ReadonlyMap<Route, BatchCollector>,
): Terminal<HandlerContext> {
  // Not async: this runs for every message. A handler that returns without a promise completes
  // with no promise at all; its throw is thrown on, which the stages take as a rejection (the retry
  // stage's failure path).
  return (ctx) => {
    // A tombstone carries no message of the contract: it goes to the route's tombstone handler only.
    if (ctx.envelope.tombstone) return invokeTombstone(ctx, new HandlerMessageContext(ctx, outbound));
    const collector = ctx.route.batch ? batches.get(ctx.route) : undefined;
    if (collector) return collector.submit(ctx);
    const result: unknown = ctx.route.handler(ctx.message, new HandlerMessageContext(ctx, outbound));
    if (result instanceof Promise) return result.then(completed);
    // A thenable that is not a native promise is awaited the way `await` would.
    if (isThenable(result)) return Promise.resolve(result).then(completed);
    return COMPLETED;
  };
}

const completed = (): Outcome => COMPLETED;
const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null &&
  (typeof value === 'object' || typeof value === 'function') &&
  typeof (value as { then?: unknown }).then === 'function';

class HandlerMessageContext implements MessageContext<unknown, unknown> {
  #published = 0;
  #log: Logger | undefined;

  constructor(
    private readonly ctx: HandlerContext,
    private readonly outbound: Outbound,
  ) {}

  get envelope(): Envelope<unknown> {
    return this.ctx.envelope;
  }
  get messageId(): string {
    return this.ctx.envelope.id;
  }
  get messageType(): string {
    return this.ctx.envelope.type;
  }
  get key(): string | undefined {
    return this.ctx.envelope.key;
  }
  get endpoint(): string {
    return this.ctx.endpoint.name;
  }
  get deliveryCount(): number {
    return this.ctx.delivery.deliveryCount;
  }
  get attempt(): number {
    return this.ctx.attempt;
  }
  get signal(): AbortSignal {
    return this.ctx.signal;
  }
  get tx(): unknown {
    return this.ctx.tx;
  }
  get log(): Logger {
    this.#log ??= this.ctx.log.child({ attempt: this.ctx.attempt });
    return this.#log;
  }

  #options(options: OutgoingOptions = {}): OutgoingOptions & { causationId: string } {
    const env = this.ctx.envelope;
    return {
      correlationId: env.correlationId ?? env.id,
      ...options,
      id: options.id ?? derivedId(env.id, this.ctx.endpoint.name, ++this.#published),
      causationId: env.id,
    };
  }

  publish(contract: MessageContract, data: unknown, options?: OutgoingOptions): Promise<void> {
    return this.outbound.publish(contract, data, this.#options(options), this.ctx.outbox, this.ctx.endpoint.name);
  }

  send(endpoint: string, contract: MessageContract, data: unknown, options?: OutgoingOptions): Promise<void> {
    return this.outbound.send(
      endpoint,
      contract,
      data,
      this.#options(options),
      this.ctx.outbox,
      this.ctx.endpoint.name,
    );
  }

  deadLetter(description: string): never {
    throw new DeadLetterSignal(description);
  }

  retryLater(delayMs: number, why?: string): never {
    throw new RetryLaterSignal(delayMs, why);
  }
}

/**
 * A deterministic id for the n-th message a handler sends while handling `messageId` on `endpoint`:
 * a redelivery that re-runs the handler produces the same ids, so consumers' inboxes deduplicate.
 */
export function derivedId(messageId: string, endpoint: string, n: number): string {
  const h = createHash('sha256').update(`${messageId}\u0000${endpoint}\u0000${n}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((Number.parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}
