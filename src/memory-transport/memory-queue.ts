import type {
  Clock,
  DeadLetteredMessage,
  FaultDetails,
  PurgeResult,
  PurgeSelection,
  RedriveResult,
  RedriveSelection,
} from '../../src/transport-core/index.js';
import {
  choose,
  deadLetterHeaders,
  Fifo,
  LockLostError,
  microtask,
  redriveHeaders,
} from '../../src/transport-core/index.js';
import type { MemoryConsumer } from './memory-consumer.js';

/** A message held by the in-memory broker. */
export interface StoredMessage {
  readonly messageId: string;
  readonly body: Buffer;
  headers: Record<string, string>;
  readonly key: string | undefined;
  /** How many times it was handed to a consumer. */
  deliveryCount: number;
}

/** A handed-out message and who holds it. Identity matters: a stale lock is a different object. */
export interface Lock {
  readonly tag: number;
  readonly message: StoredMessage;
  readonly consumer: MemoryConsumer;
  lockedUntil: number;
}

interface DeadLetterEntry extends DeadLetteredMessage {
  readonly key: string | undefined;
}

/**
 * One queue of the in-memory broker: ready messages in FIFO order, locked ones by tag, delayed
 * ones on timers, and its dead-letter queue. Locks expire by a sweep, not one timer per message,
 * so that the hot path stays cheap.
 */
export class MemoryQueue {
  readonly #ready = new Fifo<StoredMessage>();
  readonly #locks = new Map<number, Lock>();
  readonly #delayed = new Set<() => void>();
  readonly #deadLetters: DeadLetterEntry[] = [];
  readonly #consumers: MemoryConsumer[] = [];
  #nextTag = 1;
  #nextDeadLetter = 1;
  #roundRobin = 0;
  #pumpScheduled = false;
  #cancelSweep: (() => void) | undefined;

  constructor(
    readonly address: string,
    private readonly clock: Clock,
    private readonly lockTimeoutMs: number,
  ) {}

  get readyCount(): number {
    return this.#ready.length;
  }

  get lockedCount(): number {
    return this.#locks.size;
  }

  get delayedCount(): number {
    return this.#delayed.size;
  }

  enqueue(message: StoredMessage): void {
    this.#ready.push(message);
    this.schedulePump();
  }

  addConsumer(consumer: MemoryConsumer): void {
    this.#consumers.push(consumer);
    this.schedulePump();
  }

  removeConsumer(consumer: MemoryConsumer): void {
    const i = this.#consumers.indexOf(consumer);
    if (i >= 0) this.#consumers.splice(i, 1);
  }

  /** Coalesces many triggers (sends, settlements) into one dispatch pass. */
  schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    microtask(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#ready.length > 0) {
      const consumer = this.#nextReadyConsumer();
      if (!consumer) return;
      const message = this.#ready.shift() as StoredMessage;
      message.deliveryCount++;
      const lock: Lock = {
        tag: this.#nextTag++,
        message,
        consumer,
        lockedUntil: this.clock.now() + this.lockTimeoutMs,
      };
      this.#locks.set(lock.tag, lock);
      this.#armSweep();
      consumer.deliver(this, lock);
    }
  }

  #nextReadyConsumer(): MemoryConsumer | undefined {
    const n = this.#consumers.length;
    for (let i = 0; i < n; i++) {
      const consumer = this.#consumers[(this.#roundRobin + i) % n] as MemoryConsumer;
      if (consumer.canTake()) {
        this.#roundRobin = (this.#roundRobin + i + 1) % n;
        return consumer;
      }
    }
    return undefined;
  }

  /** Throws LockLostError when `lock` is no longer the current lock of its message. */
  #assertHeld(lock: Lock): void {
    if (this.#locks.get(lock.tag) !== lock) {
      throw new LockLostError(`lock on message ${lock.message.messageId} in "${this.address}" was lost`);
    }
  }

  /** Ends a lock (it must be held). */
  #take(lock: Lock): StoredMessage {
    this.#assertHeld(lock);
    this.#locks.delete(lock.tag);
    lock.consumer.settled(lock);
    this.schedulePump();
    return lock.message;
  }

  complete(lock: Lock): void {
    this.#take(lock);
  }

  release(lock: Lock, delayMs: number, headers: Readonly<Record<string, string>> | undefined): void {
    const message = this.#take(lock);
    if (headers) message.headers = { ...message.headers, ...headers };
    if (delayMs <= 0) {
      this.#ready.unshift(message);
      return;
    }
    const cancel = this.clock.setTimer(() => {
      this.#delayed.delete(cancel);
      this.enqueue(message);
    }, delayMs);
    this.#delayed.add(cancel);
  }

  deadLetter(lock: Lock, fault: FaultDetails): void {
    const message = this.#take(lock);
    this.#deadLetters.push({
      deadLetterId: `${this.address}.dlq#${this.#nextDeadLetter++}`,
      messageId: message.messageId,
      body: message.body,
      headers: deadLetterHeaders(message.headers, fault),
      fault,
      key: message.key,
    });
  }

  renew(lock: Lock): void {
    this.#assertHeld(lock);
    lock.lockedUntil = this.clock.now() + this.lockTimeoutMs;
  }

  /** Puts a lock's message back at the front, as a broker does when a consumer goes away. */
  abandon(lock: Lock): void {
    if (this.#locks.get(lock.tag) === lock) this.#ready.unshift(this.#take(lock));
  }

  locksOf(consumer: MemoryConsumer): Lock[] {
    const held: Lock[] = [];
    for (const lock of this.#locks.values()) if (lock.consumer === consumer) held.push(lock);
    return held;
  }

  #armSweep(): void {
    if (this.#cancelSweep) return;
    const every = Math.max(5, Math.min(1000, Math.floor(this.lockTimeoutMs / 4)));
    this.#cancelSweep = this.clock.setTimer(() => {
      this.#cancelSweep = undefined;
      const now = this.clock.now();
      for (const lock of this.#locks.values()) if (lock.lockedUntil <= now) this.abandon(lock);
      if (this.#locks.size > 0) this.#armSweep();
    }, every);
  }

  get deadLetterCount(): number {
    return this.#deadLetters.length;
  }

  /** The dead letters waiting now, oldest first (a copy: later changes do not move a scan). */
  deadLetterSnapshot(): DeadLetteredMessage[] {
    return this.#deadLetters.slice();
  }

  /** Takes the chosen dead letters (by dead-letter id or message id), or the oldest `limit`, out. */
  #takeDeadLetters(selection: RedriveSelection | PurgeSelection): DeadLetterEntry[] {
    const { chosen, kept } = choose(this.#deadLetters, selection, (entry) => entry);
    this.#deadLetters.splice(0, this.#deadLetters.length, ...kept);
    return chosen;
  }

  purge(selection: PurgeSelection): PurgeResult {
    const removed = this.#takeDeadLetters(selection);
    return { removed: removed.length, ids: removed.map((e) => e.messageId) };
  }

  redrive(selection: RedriveSelection, reason: string): RedriveResult {
    const now = new Date(this.clock.now());
    const chosen = this.#takeDeadLetters(selection);
    for (const entry of chosen) {
      this.enqueue({
        messageId: entry.messageId,
        body: entry.body,
        headers: redriveHeaders(entry.headers, reason, now),
        key: entry.key,
        deliveryCount: 0,
      });
    }
    return { moved: chosen.length, ids: chosen.map((e) => e.messageId) };
  }

  /** Cancels timers (delayed messages stay lost with the process: memory is not durable). */
  dispose(): void {
    this.#cancelSweep?.();
    this.#cancelSweep = undefined;
    for (const cancel of this.#delayed) cancel();
    this.#delayed.clear();
  }
}
