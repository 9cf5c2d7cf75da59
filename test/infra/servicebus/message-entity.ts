import { randomUUID } from 'node:crypto';
import rhea from 'rhea';
import { type LockToken, newLockToken } from './lock-token.js';
import { type AmqpMessage, messageAnnotation, withApplicationProperties } from './message-codec.js';
import type { TimerSet } from './timer-set.js';

export type ReceiveMode = 'peekLock' | 'receiveAndDelete';
export type MessageState = 'active' | 'deferred' | 'scheduled';

/** Something that takes deliveries from an entity: a receiver link. */
export interface Consumer {
  readonly receiveMode: ReceiveMode;
  /** Set for a session receiver: the session it holds. */
  readonly sessionId: string | undefined;
  availableCredit(): number;
  deliver(entry: StoredMessage, lock: LockToken | undefined): void;
  onSessionLockLost(): void;
}

export type LockHolder = Consumer | 'management';

export interface MessageLock {
  readonly token: LockToken;
  lockedUntilMs: number;
  readonly holder: LockHolder;
  timer: NodeJS.Timeout | undefined;
}

export interface StoredMessage {
  readonly sequenceNumber: number;
  message: AmqpMessage;
  enqueuedTimeMs: number;
  deliveryCount: number;
  state: MessageState;
  scheduledEnqueueTimeMs: number | undefined;
  readonly sessionId: string | undefined;
  lock: MessageLock | undefined;
}

export type Disposition =
  | { readonly kind: 'complete' }
  | { readonly kind: 'abandon'; readonly propertiesToModify?: Record<string, unknown> }
  | { readonly kind: 'defer'; readonly propertiesToModify?: Record<string, unknown> }
  | {
      readonly kind: 'deadLetter';
      readonly reason?: string;
      readonly description?: string;
      readonly propertiesToModify?: Record<string, unknown>;
    };

export type SettleResult = 'ok' | 'lockLost' | 'sessionLockLost';

export interface SessionLock {
  readonly holder: LockHolder;
  lockedUntilMs: number;
  timer: NodeJS.Timeout | undefined;
}

export type SessionAcquireResult =
  | { readonly ok: true; readonly sessionId: string; readonly lockedUntilMs: number }
  | { readonly ok: false; readonly reason: 'locked' | 'none' };

export interface MessageEntityOptions {
  readonly name: string;
  readonly lockDurationMs: number;
  readonly maxDeliveryCount: number;
  readonly requiresSession: boolean;
  readonly deadLetterQueue: MessageEntity | undefined;
  readonly timers: TimerSet;
  readonly now: () => number;
}

export interface MessageSnapshot {
  readonly sequenceNumber: number;
  readonly state: MessageState;
  readonly deliveryCount: number;
  readonly locked: boolean;
  /** When the lock ends (renewals move it), while locked. */
  readonly lockedUntilMs: number | undefined;
  readonly sessionId: string | undefined;
  readonly messageId: unknown;
  readonly applicationProperties: Record<string, unknown>;
}

/**
 * One message store: a queue, a subscription, or a dead-letter subqueue. FIFO by sequence
 * number; a locked message is invisible to other receivers until settled or its lock expires.
 */
export class MessageEntity {
  readonly name: string;
  readonly lockDurationMs: number;
  readonly maxDeliveryCount: number;
  readonly requiresSession: boolean;
  readonly deadLetterQueue: MessageEntity | undefined;
  readonly #timers: TimerSet;
  readonly #now: () => number;
  /** Kept in ascending sequence-number order. */
  #messages = new Map<number, StoredMessage>();
  readonly #locks = new Map<string, StoredMessage>();
  readonly #scheduleTimers = new Map<number, NodeJS.Timeout>();
  readonly #consumers: Consumer[] = [];
  readonly #sessionLocks = new Map<string, SessionLock>();
  readonly #sessionStates = new Map<string, Buffer>();
  readonly #sessionWaiters = new Set<() => boolean>();
  #nextSequenceNumber = 1;
  #pumping = false;
  #pumpAgain = false;

  constructor(options: MessageEntityOptions) {
    this.name = options.name;
    this.lockDurationMs = options.lockDurationMs;
    this.maxDeliveryCount = options.maxDeliveryCount;
    this.requiresSession = options.requiresSession;
    this.deadLetterQueue = options.deadLetterQueue;
    this.#timers = options.timers;
    this.#now = options.now;
  }

  // ---- enqueue / schedule -------------------------------------------------------------

  /** Enqueues a message as sent; a future `x-opt-scheduled-enqueue-time` makes it scheduled. */
  enqueue(message: AmqpMessage): StoredMessage {
    const scheduled = messageAnnotation(message, 'x-opt-scheduled-enqueue-time');
    const atMs =
      scheduled instanceof Date ? scheduled.getTime() : typeof scheduled === 'number' ? scheduled : undefined;
    if (atMs !== undefined && atMs > this.#now()) {
      return this.#store(message, 'scheduled', atMs, 0);
    }
    return this.#store(message, 'active', undefined, 0);
  }

  schedule(message: AmqpMessage, atMs: number): StoredMessage {
    if (atMs <= this.#now()) return this.#store(message, 'active', atMs, 0);
    return this.#store(message, 'scheduled', atMs, 0);
  }

  cancelScheduled(sequenceNumber: number): boolean {
    const entry = this.#messages.get(sequenceNumber);
    if (entry === undefined || entry.state !== 'scheduled') return false;
    this.#timers.clear(this.#scheduleTimers.get(sequenceNumber));
    this.#scheduleTimers.delete(sequenceNumber);
    this.#messages.delete(sequenceNumber);
    return true;
  }

  #store(
    message: AmqpMessage,
    state: MessageState,
    scheduledAtMs: number | undefined,
    deliveryCount: number,
  ): StoredMessage {
    const groupId: unknown = message.group_id;
    const entry: StoredMessage = {
      sequenceNumber: this.#nextSequenceNumber++,
      // the service assigns a message id when the sender set none (the SDK's lock renewer relies on it)
      message:
        message.message_id === undefined || message.message_id === null
          ? ({ ...message, message_id: randomUUID().replace(/-/g, '') } as AmqpMessage)
          : message,
      enqueuedTimeMs: state === 'scheduled' && scheduledAtMs !== undefined ? scheduledAtMs : this.#now(),
      deliveryCount,
      state,
      scheduledEnqueueTimeMs: scheduledAtMs,
      sessionId: typeof groupId === 'string' ? groupId : undefined,
      lock: undefined,
    };
    this.#messages.set(entry.sequenceNumber, entry);
    if (state === 'scheduled' && scheduledAtMs !== undefined) {
      const timer = this.#timers.setTimeout(() => {
        this.#scheduleTimers.delete(entry.sequenceNumber);
        if (this.#messages.get(entry.sequenceNumber) !== entry) return;
        entry.state = 'active';
        entry.enqueuedTimeMs = this.#now();
        this.pump();
      }, scheduledAtMs - this.#now());
      this.#scheduleTimers.set(entry.sequenceNumber, timer);
    } else {
      this.pump();
    }
    return entry;
  }

  // ---- consumers / dispatch -------------------------------------------------------------

  addConsumer(consumer: Consumer): void {
    this.#consumers.push(consumer);
    this.pump();
  }

  removeConsumer(consumer: Consumer): void {
    const i = this.#consumers.indexOf(consumer);
    if (i >= 0) this.#consumers.splice(i, 1);
    if (consumer.sessionId !== undefined) this.releaseSession(consumer, true);
  }

  /** Hands available messages to consumers with credit, round-robin. */
  pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#notifySessionWaiters();
        let progressed = true;
        while (progressed) {
          progressed = false;
          for (const consumer of [...this.#consumers]) {
            if (consumer.availableCredit() <= 0) continue;
            const entry = this.#nextFor(consumer);
            if (entry === undefined) continue;
            this.#handOver(entry, consumer);
            progressed = true;
          }
          if (progressed && this.#consumers.length > 1) {
            // rotate so that the next round starts with another consumer
            const first = this.#consumers.shift();
            if (first !== undefined) this.#consumers.push(first);
          }
        }
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
  }

  #nextFor(consumer: Consumer): StoredMessage | undefined {
    for (const entry of this.#messages.values()) {
      if (entry.state !== 'active' || entry.lock !== undefined) continue;
      if (this.requiresSession) {
        if (consumer.sessionId === undefined || entry.sessionId !== consumer.sessionId) continue;
        if (this.#sessionLocks.get(consumer.sessionId)?.holder !== consumer) continue;
      }
      return entry;
    }
    return undefined;
  }

  #handOver(entry: StoredMessage, consumer: Consumer): void {
    if (consumer.receiveMode === 'receiveAndDelete') {
      this.#messages.delete(entry.sequenceNumber);
      consumer.deliver(entry, undefined);
      return;
    }
    const token = this.#lock(entry, consumer);
    consumer.deliver(entry, token);
  }

  #lock(entry: StoredMessage, holder: LockHolder): LockToken {
    const token = newLockToken();
    const lock: MessageLock = {
      token,
      lockedUntilMs: this.#now() + this.lockDurationMs,
      holder,
      timer: undefined,
    };
    entry.lock = lock;
    this.#locks.set(token.id, entry);
    this.#armLockTimer(entry, lock);
    return token;
  }

  #armLockTimer(entry: StoredMessage, lock: MessageLock): void {
    this.#timers.clear(lock.timer);
    lock.timer = this.#timers.setTimeout(() => {
      if (entry.lock !== lock) return;
      this.#unlock(entry);
      this.#redeliverLater(entry, undefined);
    }, lock.lockedUntilMs - this.#now());
  }

  #unlock(entry: StoredMessage): void {
    const lock = entry.lock;
    if (lock === undefined) return;
    this.#timers.clear(lock.timer);
    this.#locks.delete(lock.token.id);
    entry.lock = undefined;
  }

  /** Abandon / lock expiry: count the attempt, dead-letter past maxDeliveryCount. */
  #redeliverLater(entry: StoredMessage, props: Record<string, unknown> | undefined): void {
    entry.message = withApplicationProperties(entry.message, props);
    entry.deliveryCount += 1;
    if (entry.deliveryCount >= this.maxDeliveryCount) {
      this.#moveToDeadLetter(
        entry,
        'MaxDeliveryCountExceeded',
        `Message could not be consumed after ${this.maxDeliveryCount} delivery attempts.`,
        undefined,
      );
    }
    this.pump();
  }

  #moveToDeadLetter(
    entry: StoredMessage,
    reason: string | undefined,
    description: string | undefined,
    props: Record<string, unknown> | undefined,
  ): void {
    this.#messages.delete(entry.sequenceNumber);
    const dlq = this.deadLetterQueue;
    if (dlq === undefined) return; // a dead-letter queue has no dead-letter queue: drop
    const extra: Record<string, unknown> = { ...(props ?? {}) };
    if (reason !== undefined) extra.DeadLetterReason = reason;
    if (description !== undefined) extra.DeadLetterErrorDescription = description;
    const message = withApplicationProperties(entry.message, extra);
    dlq.#store(message, 'active', undefined, entry.deliveryCount);
  }

  // ---- settlement -------------------------------------------------------------------------

  /** Settles a locked message. `holder` is the receiver link that settles, if any. */
  settle(lockTokenId: string, disposition: Disposition, holder: LockHolder | undefined): SettleResult {
    const entry = this.#locks.get(lockTokenId);
    if (entry === undefined || entry.lock?.token.id !== lockTokenId) {
      return this.#lockLostKind(holder);
    }
    if (entry.lock.lockedUntilMs < this.#now()) {
      this.#unlock(entry);
      this.#redeliverLater(entry, undefined);
      return this.#lockLostKind(holder);
    }
    this.#unlock(entry);
    switch (disposition.kind) {
      case 'complete':
        this.#messages.delete(entry.sequenceNumber);
        break;
      case 'abandon':
        this.#redeliverLater(entry, disposition.propertiesToModify);
        break;
      case 'defer':
        entry.message = withApplicationProperties(entry.message, disposition.propertiesToModify);
        entry.deliveryCount += 1;
        entry.state = 'deferred';
        break;
      case 'deadLetter':
        this.#moveToDeadLetter(entry, disposition.reason, disposition.description, disposition.propertiesToModify);
        break;
    }
    this.pump();
    return 'ok';
  }

  /** Ends every message lock now, as their expiry does (the admin API's `expireLocks`). */
  expireLocks(): number {
    const locked = [...this.#messages.values()].filter((entry) => entry.lock !== undefined);
    for (const entry of locked) {
      this.#unlock(entry);
      this.#redeliverLater(entry, undefined);
    }
    return locked.length;
  }

  #lockLostKind(holder: LockHolder | undefined): SettleResult {
    if (holder !== undefined && holder !== 'management' && holder.sessionId !== undefined) {
      const session = this.#sessionLocks.get(holder.sessionId);
      if (session?.holder !== holder) return 'sessionLockLost';
    }
    return 'lockLost';
  }

  renewLock(lockTokenId: string): number | undefined {
    const entry = this.#locks.get(lockTokenId);
    const lock = entry?.lock;
    if (entry === undefined || lock === undefined || lock.token.id !== lockTokenId) return undefined;
    if (lock.lockedUntilMs < this.#now()) return undefined;
    lock.lockedUntilMs = this.#now() + this.lockDurationMs;
    this.#armLockTimer(entry, lock);
    return lock.lockedUntilMs;
  }

  // ---- browse / deferred ------------------------------------------------------------------

  peek(fromSequenceNumber: number, count: number, sessionId: string | undefined): StoredMessage[] {
    const out: StoredMessage[] = [];
    for (const entry of this.#messages.values()) {
      if (out.length >= count) break;
      if (entry.sequenceNumber < fromSequenceNumber) continue;
      if (sessionId !== undefined && entry.sessionId !== sessionId) continue;
      out.push(entry);
    }
    return out;
  }

  /** Locks (peekLock) or removes (receiveAndDelete) deferred messages by sequence number. */
  receiveDeferred(
    sequenceNumbers: readonly number[],
    mode: ReceiveMode,
    sessionId: string | undefined,
  ): { entry: StoredMessage; token: LockToken | undefined }[] | undefined {
    const found: StoredMessage[] = [];
    for (const seq of sequenceNumbers) {
      const entry = this.#messages.get(seq);
      if (entry === undefined || entry.state !== 'deferred' || entry.lock !== undefined) return undefined;
      if (sessionId !== undefined && entry.sessionId !== sessionId) return undefined;
      found.push(entry);
    }
    return found.map((entry) => {
      if (mode === 'receiveAndDelete') {
        this.#messages.delete(entry.sequenceNumber);
        return { entry, token: undefined };
      }
      return { entry, token: this.#lock(entry, 'management') };
    });
  }

  // ---- sessions ---------------------------------------------------------------------------

  /** Locks a given session, or (sessionId undefined) the next unlocked session with messages. */
  tryAcquireSession(holder: LockHolder, sessionId: string | undefined): SessionAcquireResult {
    let chosen = sessionId;
    if (chosen === undefined) {
      for (const entry of this.#messages.values()) {
        if (entry.state !== 'active' || entry.lock !== undefined || entry.sessionId === undefined) continue;
        if (this.#sessionLocks.has(entry.sessionId)) continue;
        chosen = entry.sessionId;
        break;
      }
      if (chosen === undefined) return { ok: false, reason: 'none' };
    } else if (this.#sessionLocks.has(chosen)) {
      return { ok: false, reason: 'locked' };
    }
    const lock: SessionLock = { holder, lockedUntilMs: this.#now() + this.lockDurationMs, timer: undefined };
    this.#sessionLocks.set(chosen, lock);
    this.#armSessionTimer(chosen, lock);
    return { ok: true, sessionId: chosen, lockedUntilMs: lock.lockedUntilMs };
  }

  /** Registers a callback run whenever sessions may have become available; it returns true when done. */
  waitForSession(attempt: () => boolean): () => void {
    this.#sessionWaiters.add(attempt);
    return () => this.#sessionWaiters.delete(attempt);
  }

  #notifySessionWaiters(): void {
    for (const attempt of [...this.#sessionWaiters]) {
      if (attempt()) this.#sessionWaiters.delete(attempt);
    }
  }

  #armSessionTimer(sessionId: string, lock: SessionLock): void {
    this.#timers.clear(lock.timer);
    lock.timer = this.#timers.setTimeout(() => {
      if (this.#sessionLocks.get(sessionId) !== lock) return;
      const holder = lock.holder;
      this.releaseSession(holder, true);
      if (holder !== 'management') holder.onSessionLockLost();
    }, lock.lockedUntilMs - this.#now());
  }

  /** Releases the session held by `holder`; its locked messages become available again. */
  releaseSession(holder: LockHolder, countAttempt: boolean): void {
    for (const [sessionId, lock] of this.#sessionLocks) {
      if (lock.holder !== holder) continue;
      this.#timers.clear(lock.timer);
      this.#sessionLocks.delete(sessionId);
      for (const entry of [...this.#messages.values()]) {
        if (entry.sessionId !== sessionId || entry.lock === undefined || entry.lock.holder !== holder) continue;
        this.#unlock(entry);
        if (countAttempt) this.#redeliverLater(entry, undefined);
      }
    }
    this.pump();
  }

  renewSessionLock(sessionId: string): number | undefined {
    const lock = this.#sessionLocks.get(sessionId);
    if (lock === undefined) return undefined;
    lock.lockedUntilMs = this.#now() + this.lockDurationMs;
    this.#armSessionTimer(sessionId, lock);
    return lock.lockedUntilMs;
  }

  isSessionLocked(sessionId: string): boolean {
    return this.#sessionLocks.has(sessionId);
  }

  getSessionState(sessionId: string): Buffer | undefined {
    return this.#sessionStates.get(sessionId);
  }

  setSessionState(sessionId: string, state: Buffer | undefined): void {
    if (state === undefined || state.length === 0) this.#sessionStates.delete(sessionId);
    else this.#sessionStates.set(sessionId, state);
  }

  // ---- admin ------------------------------------------------------------------------------

  snapshot(): MessageSnapshot[] {
    return [...this.#messages.values()].map((e) => ({
      sequenceNumber: e.sequenceNumber,
      state: e.state,
      deliveryCount: e.deliveryCount,
      locked: e.lock !== undefined,
      lockedUntilMs: e.lock?.lockedUntilMs,
      sessionId: e.sessionId,
      messageId: e.message.message_id,
      applicationProperties: { ...(e.message.application_properties ?? {}) },
    }));
  }

  /** Builds the message as it goes on the wire to a receiver (broker annotations added). */
  static toWireMessage(entry: StoredMessage): AmqpMessage {
    const annotations: Record<string, unknown> = { ...(entry.message.message_annotations ?? {}) };
    annotations['x-opt-sequence-number'] = rhea.types.wrap_long(entry.sequenceNumber);
    annotations['x-opt-enqueued-time'] = new Date(entry.enqueuedTimeMs);
    if (entry.lock !== undefined) annotations['x-opt-locked-until'] = new Date(entry.lock.lockedUntilMs);
    if (entry.state === 'deferred') annotations['x-opt-message-state'] = rhea.types.wrap_int(1);
    else if (entry.state === 'scheduled') annotations['x-opt-message-state'] = rhea.types.wrap_int(2);
    if (entry.scheduledEnqueueTimeMs !== undefined) {
      annotations['x-opt-scheduled-enqueue-time'] = new Date(entry.scheduledEnqueueTimeMs);
    }
    return { ...entry.message, delivery_count: entry.deliveryCount, message_annotations: annotations } as AmqpMessage;
  }
}
