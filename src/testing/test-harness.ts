import type { Logger } from 'pino';
import { MemoryTransportConfigSchema } from '../memory-transport/index.js';
import { MemoryBroker } from '../memory-transport/memory-broker.js';
import type { Bus } from '../bus/bus.js';
import type { BusConfigInput } from '../bus/config-schema.js';
import type { MessageContract, MessageInputOf, MessageOf } from '../contracts/define-message.js';
import { cloudEventsCodec } from '../envelope/cloudevents-codec.js';
import type { EnvelopeOptions } from '../envelope/envelope.js';
import { ConfigError, LifecycleError } from '../errors/sluice-error.js';
import type { InboxCommonConfig, InboxDefinition } from '../inbox/inbox-store.js';
import { delay } from '../internal/abort.js';
import { ManualClock, systemClock } from '../internal/clock.js';
import { WaitGauge } from '../internal/wait-gauge.js';
import {
  type ConsumedMessage,
  type DeadLetteredRecord,
  MessageLog,
  type OutcomeRecord,
  type OutgoingRecord,
  type SkippedRecord,
} from './message-log.js';
import { pendingWork } from './pending-work.js';
import { Quiescence } from './quiescence.js';
import { createTestBus } from './test-bus.js';

/** How much virtual time `settled()` may let pass by default: a day. */
export const DEFAULT_HORIZON_MS = 24 * 3_600_000;
/** How long `settled()` waits in real time by default: under vitest's default test timeout (5 s). */
export const DEFAULT_TIMEOUT_MS = 4_000;

export interface TestHarnessOptions<TTx = undefined> {
  /**
   * The bus configuration, as in production (`service`, `endpoints.<name>`, `retrySigningKey`, ...).
   * The transport is always the memory transport (`transport.lockTimeoutMs` is kept); signal
   * handlers are off; `shutdown.timeoutMs` defaults to 1 s; `inbox` holds the settings of the store
   * given below.
   */
  readonly config?: BusConfigInput;
  /**
   * The inbox store, as for `createBus`: `memoryInbox()`, or `sqliteInbox()` from `sluice/sqlite`
   * (without `config.inbox.path`, a throwaway `:memory:` database per bus). None by default.
   */
  readonly inbox?: InboxDefinition<TTx, InboxCommonConfig & { kind: string }>;
  /**
   * `'manual'` (the default): virtual time, a `ManualClock` starting at `startAt`, that only the
   * harness moves (`settled()`, `advance()`). `'system'`: real time; `settled()` then waits for
   * real delays. A `ManualClock` of your own: virtual time on it.
   */
  readonly clock?: 'manual' | 'system' | ManualClock;
  /** Where a new manual clock starts (epoch ms). Default: the real time when the harness is made. */
  readonly startAt?: number;
  /** Virtual time `settled()` may let pass before it gives up naming what is still due. Default: 24 h. */
  readonly horizonMs?: number;
  /** Real time `settled()` and `advance()` wait for handlers to finish. Default: 4 s. */
  readonly timeoutMs?: number;
  /** Default: silent. */
  readonly logger?: Logger;
}

/** Per call: overrides the harness's `horizonMs` and `timeoutMs`. */
export interface SettleOptions {
  readonly horizonMs?: number;
  readonly timeoutMs?: number;
}

/**
 * A bus on the in-memory broker, for tests of handlers: typed by the same contracts as production,
 * on a clock the test controls. Register handlers on `harness.bus` as in production, `start()`,
 * publish or send, `await settled()`, then read what happened: `consumed`, `published`, `sent`,
 * `deadLettered` (with the fault), `skipped`, each typed from the contract.
 *
 * Settled means at rest: no delivery in flight, nothing ready for a consumer, nothing released for
 * later. With the manual clock (the default), whenever every delivery left is waiting for time (a
 * retry's delay, a delayed redelivery, a kill switch's restart, a dependency backoff, a batch
 * gathering), `settled()` moves virtual time to the next timer due, until nothing is; a one-hour
 * backoff takes milliseconds. It never polls or sleeps: it wakes on each delivery, settlement and
 * wait, and gives up with a `NotSettledError` naming what is left after `timeoutMs` of real time or
 * `horizonMs` of virtual time. Works under any test runner (vitest, `node --test`); needs no broker.
 *
 * @example
 * const harness = createTestHarness();
 * harness.bus.endpoint('shipping').handle(OrderPlaced, bookShipment);
 * await harness.start();
 * await harness.publish(OrderPlaced, { orderId: 'o-1' });
 * await harness.settled();
 * expect(harness.published(ShipmentBooked)).toHaveLength(1);
 * await harness.stop();
 */
export class TestHarness<TTx = undefined> {
  /** The manual clock, when the harness runs in virtual time. */
  readonly clock: ManualClock | undefined;
  /** The in-memory broker every bus of the harness shares. */
  readonly broker: MemoryBroker;
  readonly #buses: Bus<TTx>[] = [];
  readonly #log = new MessageLog(cloudEventsCodec);
  readonly #waits = new WaitGauge();
  readonly #horizonMs: number;
  readonly #timeoutMs: number;
  readonly #quiescence: Quiescence;
  #started = false;
  /** Numbers the message ids of `sendRaw`. */
  #raw = 0;

  constructor(private readonly options: TestHarnessOptions<TTx> = {}) {
    const transport = options.config?.transport;
    if (transport !== undefined && transport.kind !== 'memory') {
      throw new ConfigError([`transport.kind: sluice/testing runs on the memory transport, not "${transport.kind}"`]);
    }
    const lock = MemoryTransportConfigSchema.safeParse({ kind: 'memory', ...transport });
    if (!lock.success) throw new ConfigError([`transport: ${lock.error.issues.map((i) => i.message).join('; ')}`]);
    const { clock = 'manual' } = options;
    this.clock =
      clock === 'system' ? undefined : clock === 'manual' ? new ManualClock(options.startAt ?? Date.now()) : clock;
    this.broker = new MemoryBroker({ clock: this.clock ?? systemClock, lockTimeoutMs: lock.data.lockTimeoutMs });
    this.#horizonMs = options.horizonMs ?? DEFAULT_HORIZON_MS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#quiescence = new Quiescence(
      {
        working: () => this.#working(),
        pending: () => pendingWork(this.#buses as readonly Bus<unknown>[], this.broker),
      },
      this.clock,
    );
    this.#waits.onChange(this.#quiescence.notify);
    this.#buses.push(this.#makeBus(0));
  }

  /** The bus to register handlers on, publish and send with. */
  get bus(): Bus<TTx> {
    return this.#buses[0] as Bus<TTx>;
  }

  /**
   * Another instance of the service: a bus with the same configuration on the same broker, clock
   * and records (competing consumers). Register its handlers before `start()`. Each instance has its
   * own inbox store (a memory inbox is not shared).
   */
  addInstance(): Bus<TTx> {
    if (this.#started) throw new LifecycleError('add instances before start()');
    const bus = this.#makeBus(this.#buses.length);
    this.#buses.push(bus);
    return bus;
  }

  #makeBus(instance: number): Bus<TTx> {
    return createTestBus<TTx>({
      instance,
      config: this.options.config ?? {},
      inbox: this.options.inbox,
      broker: this.broker,
      clock: this.clock ?? systemClock,
      logger: this.options.logger,
      waits: this.#waits,
      log: this.#log,
      notify: this.#quiescence.notify,
    });
  }

  /** Starts every bus (register handlers first). */
  async start(): Promise<void> {
    this.#started = true;
    for (const bus of this.#buses) await bus.start();
  }

  /** Stops every bus (each as `bus.stop()` does) and the broker's timers. Idempotent. */
  async stop(): Promise<void> {
    await Promise.all(this.#buses.map((bus) => bus.stop()));
    this.broker.dispose();
  }

  /** `bus.publish`: resolves once the broker has it, not when it is handled (see `settled()`). */
  publish<C extends MessageContract>(contract: C, data: MessageInputOf<C>, options?: EnvelopeOptions): Promise<string> {
    return this.bus.publish(contract, data, options);
  }

  /** `bus.send`: to an endpoint's name or any address. */
  send<C extends MessageContract>(
    endpoint: string,
    contract: C,
    data: MessageInputOf<C>,
    options?: EnvelopeOptions,
  ): Promise<string> {
    return this.bus.send(endpoint, contract, data, options);
  }

  /**
   * Puts bytes on an address as a foreign producer would, for bad input: not checked, not
   * recorded as sent. A string or bytes go as they are; anything else as its JSON.
   */
  async sendRaw(address: string, body: unknown, headers: Readonly<Record<string, string>> = {}): Promise<void> {
    const bytes =
      typeof body === 'string' || body instanceof Uint8Array ? Buffer.from(body) : Buffer.from(JSON.stringify(body));
    this.broker.queue(address).enqueue({
      messageId: `raw-${++this.#raw}`,
      body: bytes,
      headers: { ...headers },
      key: undefined,
      deliveryCount: 0,
    });
  }

  /**
   * Resolves `ms` later on the harness's clock: for a handler that takes a while (a slow downstream)
   * in virtual time. The delivery counts as waiting meanwhile, so `settled()` and `advance()` move
   * the clock for it instead of waiting for it as for real work.
   */
  async delay(ms: number): Promise<void> {
    this.#waits.enter();
    try {
      await delay(ms, undefined, this.clock ?? systemClock);
    } finally {
      this.#waits.leave();
    }
  }

  /**
   * Resolves once the buses are at rest: nothing in flight, nothing ready, nothing released for
   * later. With the manual clock it moves virtual time to each next timer whenever only time can
   * move things on. Throws `NotSettledError` (naming what is left) after `timeoutMs` of real time,
   * or when it would pass `horizonMs` of virtual time.
   */
  async settled(options: SettleOptions = {}): Promise<void> {
    this.#assertStarted('settled()');
    await this.#quiescence.settle(options.timeoutMs ?? this.#timeoutMs, options.horizonMs ?? this.#horizonMs);
  }

  /**
   * Moves virtual time forward by `ms`, firing the timers that fall due one instant at a time and
   * letting what each one starts finish before the next; ends exactly `ms` later, without going on
   * to later timers (call `settled()` for that). Needs the manual clock.
   */
  async advance(ms: number, options: Pick<SettleOptions, 'timeoutMs'> = {}): Promise<void> {
    this.#assertStarted('advance()');
    if (!this.clock) throw new LifecycleError('advance() needs virtual time: the harness runs on the system clock');
    await this.#quiescence.advance(this.clock, ms, options.timeoutMs ?? this.#timeoutMs);
  }

  /** Every delivery's exit from its endpoint, in order: final outcomes, retries and releases. */
  get outcomes(): readonly OutcomeRecord[] {
    return this.#log.outcomes;
  }

  /** Messages handlers completed (tombstones are in `outcomes`), in order; typed by `contract`. */
  consumed(): ConsumedMessage<unknown>[];
  consumed<C extends MessageContract>(contract: C): ConsumedMessage<MessageOf<C>>[];
  consumed<C extends MessageContract>(contract?: C): ConsumedMessage<MessageOf<C>>[] {
    return this.#log.consumed(contract);
  }

  /** Messages published by the buses (by handlers and by the test), read through `contract`. */
  published(): OutgoingRecord<unknown>[];
  published<C extends MessageContract>(contract: C): OutgoingRecord<MessageOf<C>>[];
  published<C extends MessageContract>(contract?: C): OutgoingRecord<MessageOf<C>>[] {
    return this.#log.outgoing('publish', contract);
  }

  /** Messages sent by the buses to one address (rejection notices included), read through `contract`. */
  sent(): OutgoingRecord<unknown>[];
  sent<C extends MessageContract>(contract: C): OutgoingRecord<MessageOf<C>>[];
  sent<C extends MessageContract>(contract?: C): OutgoingRecord<MessageOf<C>>[] {
    return this.#log.outgoing('send', contract);
  }

  /** Messages dead-lettered, each with its fault; bad input included (`attempts: 0`). */
  deadLettered(): DeadLetteredRecord<unknown>[];
  deadLettered<C extends MessageContract>(contract: C): DeadLetteredRecord<MessageOf<C>>[];
  deadLettered<C extends MessageContract>(contract?: C): DeadLetteredRecord<MessageOf<C>>[] {
    return this.#log.deadLettered(contract);
  }

  /** Messages completed without their handler: duplicate, stale, tombstoned, unknown type, dropped. */
  skipped(): SkippedRecord<unknown>[];
  skipped<C extends MessageContract>(contract: C): SkippedRecord<MessageOf<C>>[];
  skipped<C extends MessageContract>(contract?: C): SkippedRecord<MessageOf<C>>[] {
    return this.#log.skipped(contract);
  }

  /** Deliveries in flight that neither wait for a timer nor for another delivery. */
  #working(): number {
    let inFlight = 0;
    for (const bus of this.#buses) for (const e of Object.values(bus.health().endpoints)) inFlight += e.inFlight;
    // At least 0: a test may wait on `delay()` outside any delivery.
    return Math.max(0, inFlight - this.#waits.waiting);
  }

  #assertStarted(what: string): void {
    if (!this.#started) throw new LifecycleError(`${what} before start()`);
  }
}

/** Makes a test harness: see {@link TestHarness}. Register handlers on `harness.bus`, then `start()`. */
export function createTestHarness<TTx = undefined>(options: TestHarnessOptions<TTx> = {}): TestHarness<TTx> {
  return new TestHarness<TTx>(options);
}
