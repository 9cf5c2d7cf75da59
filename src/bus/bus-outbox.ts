import { randomUUID } from 'node:crypto';
import type { MessageContract, MessageInputOf } from '../contracts/define-message.js';
import type { EnvelopeOptions } from '../envelope/envelope.js';
import { ConfigError, LifecycleError } from '../errors/sluice-error.js';
import { Outbox, type Written } from '../outbox/outbox.js';
import type { OutboxMessage } from '../outbox/outbox-store.js';
import type { BusParts, BusState } from './bus-parts.js';
import type { BusProducer } from './bus-producer.js';

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

/**
 * The bus's outbox, when its inbox store has one and `outbox.enabled`: made with the bus, started
 * after the transport connects and stopped before it closes (by the bus), and `bus.transaction`.
 */
export class BusOutbox<TTx> {
  readonly #outbox: Outbox | undefined;

  constructor(
    private readonly parts: BusParts,
    private readonly producer: BusProducer,
    private readonly state: () => BusState,
    /** A row a handler of `endpoint` wrote could not go to the broker. */
    onBrokerFailure: (endpoint: string | undefined, error: unknown) => void,
  ) {
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
        onBrokerFailure,
      });
    }
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
    if (this.state() !== 'started') {
      throw new LifecycleError(`bus.transaction needs a started bus (bus is ${this.state()})`);
    }
    const outgoing: OutboxMessage[] = [];
    let written: Written | undefined;
    let result: R;
    try {
      result = await store.transaction(async (tx) => {
        outgoing.length = 0;
        const scope: TransactionScope<TTx> = {
          tx: tx as TTx,
          publish: (contract, data, options = {}) =>
            this.producer.stage(outgoing, 'publish', contract.type, contract, data, options, undefined),
          send: (endpoint, contract, data, options = {}) =>
            this.producer.stage(
              outgoing,
              'send',
              this.producer.addressOf(endpoint),
              contract,
              data,
              options,
              undefined,
            ),
        };
        const value = await work(scope);
        written = outgoing.length > 0 ? await outbox.write(tx, outgoing) : undefined;
        return value;
      });
    } catch (error) {
      // Written, then failed: rolled back, or committed without our knowing (a lost commit reply).
      if (written) outbox.abandon(written);
      throw error;
    }
    // Committed: the rows go out now, in process, without waiting for the broker (a broker that is
    // down must not slow the work that wrote them; the relay retries), unless `dispatchBacklog` rows
    // already wait for it (back-pressure).
    if (written) await outbox.afterCommit(written);
    return result;
  }

  /** The outbox, when the bus has one (its store's rows, for tools and tests). */
  get outbox(): Outbox | undefined {
    return this.#outbox;
  }
}
