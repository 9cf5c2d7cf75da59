import type { AmqpMessage } from './message-codec.js';
import { MessageEntity } from './message-entity.js';
import type { TimerSet } from './timer-set.js';

export interface EntityOptions {
  readonly requiresSession?: boolean;
  readonly lockDurationMs?: number;
  readonly maxDeliveryCount?: number;
}

export interface QueueDefinition extends EntityOptions {
  readonly name: string;
}

export interface SubscriptionDefinition extends EntityOptions {
  readonly name: string;
  /**
   * Auto-forwarding: messages reaching the subscription are moved into this queue (as the service
   * does with `ForwardTo`); the subscription itself then stays empty.
   */
  readonly forwardTo?: string;
}

export interface TopicDefinition {
  readonly name: string;
  readonly subscriptions: readonly (string | SubscriptionDefinition)[];
}

/** Where a sender's messages go: a queue, or a topic that copies into its subscriptions. */
export interface SendTarget {
  readonly name: string;
  /** Returns an error description if the message cannot be accepted. */
  validate(message: AmqpMessage): string | undefined;
  send(message: AmqpMessage): void;
  schedule(message: AmqpMessage, atMs: number): number;
  cancelScheduled(sequenceNumber: number): boolean;
}

class QueueTarget implements SendTarget {
  readonly name: string;
  readonly #entity: MessageEntity;
  constructor(entity: MessageEntity) {
    this.name = entity.name;
    this.#entity = entity;
  }
  validate(message: AmqpMessage): string | undefined {
    return validateSession(this.#entity, message);
  }
  send(message: AmqpMessage): void {
    this.#entity.enqueue(message);
  }
  schedule(message: AmqpMessage, atMs: number): number {
    return this.#entity.schedule(message, atMs).sequenceNumber;
  }
  cancelScheduled(sequenceNumber: number): boolean {
    return this.#entity.cancelScheduled(sequenceNumber);
  }
}

class TopicTarget implements SendTarget {
  readonly name: string;
  /** Where each subscription's copy lands: the subscription, or the queue it forwards to. */
  readonly subscriptions: MessageEntity[];
  readonly #scheduled = new Map<number, { entity: MessageEntity; sequenceNumber: number }[]>();
  #nextSequenceNumber = 1;
  constructor(name: string, subscriptions: readonly MessageEntity[]) {
    this.name = name;
    this.subscriptions = [...subscriptions];
  }
  validate(message: AmqpMessage): string | undefined {
    for (const sub of this.subscriptions) {
      const problem = validateSession(sub, message);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  send(message: AmqpMessage): void {
    for (const sub of this.subscriptions) sub.enqueue(message);
  }
  schedule(message: AmqpMessage, atMs: number): number {
    const seq = this.#nextSequenceNumber++;
    this.#scheduled.set(
      seq,
      this.subscriptions.map((entity) => ({ entity, sequenceNumber: entity.schedule(message, atMs).sequenceNumber })),
    );
    return seq;
  }
  cancelScheduled(sequenceNumber: number): boolean {
    const copies = this.#scheduled.get(sequenceNumber);
    if (copies === undefined) return false;
    this.#scheduled.delete(sequenceNumber);
    let any = false;
    for (const c of copies) any = c.entity.cancelScheduled(c.sequenceNumber) || any;
    return any;
  }
}

function validateSession(entity: MessageEntity, message: AmqpMessage): string | undefined {
  if (entity.requiresSession && typeof message.group_id !== 'string') {
    return `The SessionId was not set on a message, and it cannot be sent to the entity '${entity.name}'. Entities that have session support enabled can only receive messages that have the SessionId set to a valid value.`;
  }
  return undefined;
}

export interface RegistryOptions {
  readonly queues: readonly (string | QueueDefinition)[];
  readonly topics: readonly TopicDefinition[];
  readonly lockDurationMs: number;
  readonly maxDeliveryCount: number;
  readonly timers: TimerSet;
  readonly now: () => number;
}

const DLQ_SUFFIX = '/$deadletterqueue';
const TRANSFER_DLQ_SUFFIX = '/$transfer/$deadletterqueue';

/** The declared entities of the emulated namespace, addressed by path (case-insensitive). */
export class EntityRegistry {
  readonly #receivable = new Map<string, MessageEntity>();
  readonly #sendTargets = new Map<string, SendTarget>();
  /** Every path that names something (for $management and error messages). */
  readonly #all = new Map<string, MessageEntity | SendTarget>();

  readonly #options: RegistryOptions;

  constructor(options: RegistryOptions) {
    this.#options = options;
    for (const q of options.queues) this.addQueue(typeof q === 'string' ? { name: q } : q);
    for (const t of options.topics) this.addTopic(t);
  }

  #make(name: string, o: EntityOptions): MessageEntity {
    const options = this.#options;
    const common = { timers: options.timers, now: options.now };
    const lockDurationMs = o.lockDurationMs ?? options.lockDurationMs;
    const dlq = new MessageEntity({
      ...common,
      name: `${name}/$DeadLetterQueue`,
      lockDurationMs,
      maxDeliveryCount: Number.POSITIVE_INFINITY,
      requiresSession: false,
      deadLetterQueue: undefined,
    });
    const transferDlq = new MessageEntity({
      ...common,
      name: `${name}/$Transfer/$DeadLetterQueue`,
      lockDurationMs,
      maxDeliveryCount: Number.POSITIVE_INFINITY,
      requiresSession: false,
      deadLetterQueue: undefined,
    });
    const entity = new MessageEntity({
      ...common,
      name,
      lockDurationMs,
      maxDeliveryCount: o.maxDeliveryCount ?? options.maxDeliveryCount,
      requiresSession: o.requiresSession ?? false,
      deadLetterQueue: dlq,
    });
    const key = name.toLowerCase();
    this.#receivable.set(key, entity);
    this.#receivable.set(key + DLQ_SUFFIX, dlq);
    this.#receivable.set(key + TRANSFER_DLQ_SUFFIX, transferDlq);
    this.#all.set(key, entity);
    this.#all.set(key + DLQ_SUFFIX, dlq);
    this.#all.set(key + TRANSFER_DLQ_SUFFIX, transferDlq);
    return entity;
  }

  /** Declares a queue (at start or later, as the administration API does). Fails if the path is taken. */
  addQueue(def: QueueDefinition): void {
    const key = EntityRegistry.normalize(def.name);
    if (this.#all.has(key)) throw new Error(`The messaging entity '${def.name}' already exists.`);
    const entity = this.#make(def.name, def);
    this.#sendTargets.set(key, new QueueTarget(entity));
  }

  /**
   * Deletes a queue with its dead-letter subqueues and its messages, as the administration API does;
   * subscriptions that forwarded into it stop forwarding. Returns the deleted paths (for detaching
   * the links reading them). Fails if there is no such queue.
   */
  removeQueue(name: string): string[] {
    const key = EntityRegistry.normalize(name);
    const entity = this.#receivable.get(key);
    if (!(this.#sendTargets.get(key) instanceof QueueTarget) || entity === undefined) {
      throw new Error(`The messaging entity '${name}' could not be found.`);
    }
    const paths = [key, key + DLQ_SUFFIX, key + TRANSFER_DLQ_SUFFIX];
    for (const path of paths) {
      this.#receivable.delete(path);
      this.#all.delete(path);
    }
    this.#sendTargets.delete(key);
    for (const target of this.#sendTargets.values()) {
      if (!(target instanceof TopicTarget)) continue;
      const kept = target.subscriptions.filter((s) => s !== entity);
      target.subscriptions.splice(0, target.subscriptions.length, ...kept);
    }
    return paths;
  }

  /** Declares a topic with its subscriptions. Fails if the path is taken. */
  addTopic(def: TopicDefinition): void {
    const key = EntityRegistry.normalize(def.name);
    if (this.#all.has(key)) throw new Error(`The messaging entity '${def.name}' already exists.`);
    const target = new TopicTarget(def.name, []);
    this.#sendTargets.set(key, target);
    this.#all.set(key, target);
    for (const s of def.subscriptions) this.addSubscription(def.name, typeof s === 'string' ? { name: s } : s);
  }

  /**
   * Adds a subscription to a declared topic. With `forwardTo`, the topic's copies go straight into
   * that (declared) queue: auto-forwarding, whose hop the service makes inside the namespace.
   */
  addSubscription(topic: string, def: SubscriptionDefinition): void {
    const target = this.#sendTargets.get(EntityRegistry.normalize(topic));
    if (!(target instanceof TopicTarget)) throw new Error(`The messaging entity '${topic}' could not be found.`);
    const path = `${target.name}/Subscriptions/${def.name}`;
    if (this.#all.has(EntityRegistry.normalize(path)))
      throw new Error(`The messaging entity '${path}' already exists.`);
    const entity = this.#make(path, def);
    if (def.forwardTo === undefined) {
      target.subscriptions.push(entity);
      return;
    }
    const forwardTarget = this.#receivable.get(EntityRegistry.normalize(def.forwardTo));
    if (
      forwardTarget === undefined ||
      !(this.#sendTargets.get(EntityRegistry.normalize(def.forwardTo)) instanceof QueueTarget)
    ) {
      throw new Error(`The forwardTo queue '${def.forwardTo}' could not be found.`);
    }
    target.subscriptions.push(forwardTarget);
  }

  static normalize(path: string): string {
    return path.replace(/^\/+|\/+$/g, '').toLowerCase();
  }

  sendTarget(path: string): SendTarget | undefined {
    return this.#sendTargets.get(EntityRegistry.normalize(path));
  }

  receiveSource(path: string): MessageEntity | undefined {
    return this.#receivable.get(EntityRegistry.normalize(path));
  }

  exists(path: string): boolean {
    return this.#all.has(EntityRegistry.normalize(path));
  }

  allEntities(): MessageEntity[] {
    return [...new Set(this.#receivable.values())];
  }
}
