import amqp, { type ChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import type { Clock, TransportState } from '../../src/transport-core/index.js';
import {
  errorText,
  redactConnectionString,
  redactSecrets,
  secretsOf,
  TransportError,
  withTimeout,
} from '../../src/transport-core/index.js';
import type { RabbitmqTransportConfig } from './rabbitmq-config.js';

/** Runs after every (re)connection, before the transport reports `connected`; a throw retries. */
export type ConnectedHook = (model: ChannelModel) => Promise<void>;

/** A caller waiting for the connection, and the end of its wait's timer. */
interface Waiter {
  resolve(model: ChannelModel): void;
  reject(error: unknown): void;
  cancel(): void;
}

/**
 * The one AMQP connection of a transport and its recovery. After a loss it reconnects with
 * exponential backoff and jitter, forever until closed, running the hooks (re-declare topology,
 * reopen consumers) on the new connection before it reports `connected` again. Callers that need
 * the connection wait for it with a deadline ({@link whenConnected}).
 */
export class RabbitmqConnection {
  #state: TransportState = 'idle';
  #model: ChannelModel | undefined;
  #cancelRetry: (() => void) | undefined;
  readonly #waiters = new Set<Waiter>();
  readonly #hooks: ConnectedHook[] = [];
  readonly #display: string;
  /** The password, as written and decoded: masked wherever a client message repeats it. */
  readonly #secrets: readonly string[];

  constructor(
    private readonly config: RabbitmqTransportConfig,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {
    this.#display = redactConnectionString(config.url);
    this.#secrets = secretsOf(config.url);
  }

  get state(): TransportState {
    return this.#state;
  }

  /** The live connection, or undefined while not connected. */
  get current(): ChannelModel | undefined {
    return this.#state === 'connected' ? this.#model : undefined;
  }

  /** Registers a hook run on every later reconnection, in registration order. */
  onReconnected(hook: ConnectedHook): void {
    this.#hooks.push(hook);
  }

  /** Opens the first connection; one attempt, failing with a retryable `TransportError`. */
  async connect(): Promise<void> {
    if (this.#state === 'closed') throw new TransportError('rabbitmq transport is closed', { retryable: false });
    if (this.#state !== 'idle') return;
    this.#state = 'connecting';
    try {
      this.#adopt(await this.#open());
    } catch (error) {
      this.#state = 'idle';
      const detail = redactSecrets(errorText(error), this.#secrets);
      throw new TransportError(`cannot connect to RabbitMQ at ${this.#display}: ${detail}`, { cause: error });
    }
    this.logger.info({ broker: this.#display }, 'connected to RabbitMQ');
  }

  async #open(): Promise<ChannelModel> {
    const { url, heartbeatSeconds, connectTimeoutMs, tls } = this.config;
    const target = new URL(url);
    if (!target.searchParams.has('heartbeat')) target.searchParams.set('heartbeat', String(heartbeatSeconds));
    // amqplib's `timeout`: the socket's idle timeout until the connection is open (then cleared). A
    // broker that never answers fails the attempt with "connect ETIMEDOUT" instead of holding it.
    const socket: Record<string, unknown> = {
      clientProperties: { connection_name: 'sluice' },
      timeout: connectTimeoutMs,
    };
    if (tls) {
      socket.rejectUnauthorized = tls.rejectUnauthorized;
      if (tls.ca) socket.ca = [tls.ca];
      if (tls.cert) socket.cert = tls.cert;
      if (tls.key) socket.key = tls.key;
    }
    const model = await amqp.connect(target.toString(), socket);
    model.on('error', (error: Error) => {
      this.logger.warn({ error: redactSecrets(errorText(error), this.#secrets) }, 'RabbitMQ connection error');
    });
    model.on('blocked', (reason: string) =>
      this.logger.warn({ reason }, 'RabbitMQ blocked the connection (resource alarm)'),
    );
    model.on('unblocked', () => this.logger.info('RabbitMQ unblocked the connection'));
    return model;
  }

  #adopt(model: ChannelModel): void {
    this.#model = model;
    this.#state = 'connected';
    model.once('close', (error?: Error) => this.#lost(model, error));
    for (const waiter of this.#waiters) {
      waiter.cancel();
      waiter.resolve(model);
    }
    this.#waiters.clear();
  }

  #lost(model: ChannelModel, error: Error | undefined): void {
    if (model !== this.#model || this.#state === 'closed') return;
    this.#model = undefined;
    this.#state = 'reconnecting';
    this.logger.warn(
      { broker: this.#display, error: error ? redactSecrets(errorText(error), this.#secrets) : 'closed' },
      'lost the RabbitMQ connection; reconnecting',
    );
    this.#scheduleReconnect(this.config.reconnect.initialDelayMs, 1);
  }

  #scheduleReconnect(delayMs: number, attempt: number): void {
    const jittered = Math.round(delayMs * (0.8 + Math.random() * 0.4));
    this.#cancelRetry = this.clock.setTimer(() => {
      this.#cancelRetry = undefined;
      void this.#reconnect(delayMs, attempt);
    }, jittered);
  }

  async #reconnect(delayMs: number, attempt: number): Promise<void> {
    if (this.#state !== 'reconnecting') return;
    let model: ChannelModel | undefined;
    let closed = false;
    try {
      model = await this.#open();
      model.once('close', () => {
        closed = true;
      });
      for (const hook of this.#hooks) {
        if (closed) throw new Error('connection closed during recovery');
        await hook(model);
      }
      if (closed) throw new Error('connection closed during recovery');
    } catch (error) {
      if (model && !closed) await this.#closeModel(model);
      if (this.#state !== 'reconnecting') return;
      const next = Math.min(delayMs * 2, this.config.reconnect.maxDelayMs);
      this.logger.warn(
        { attempt, retryInMs: next, error: redactSecrets(errorText(error), this.#secrets) },
        'RabbitMQ reconnect failed',
      );
      this.#scheduleReconnect(next, attempt + 1);
      return;
    }
    if (this.#state !== 'reconnecting') {
      await this.#closeModel(model);
      return;
    }
    this.#adopt(model);
    this.logger.info({ broker: this.#display, attempt }, 'reconnected to RabbitMQ');
  }

  /**
   * The live connection; while reconnecting, waits for it up to `timeoutMs` and then fails with a
   * retryable `TransportError`. Fails at once, not retryable, once the transport is closed.
   */
  whenConnected(timeoutMs: number): Promise<ChannelModel> {
    if (this.#state === 'connected' && this.#model) return Promise.resolve(this.#model);
    if (this.#state === 'closed') {
      return Promise.reject(new TransportError('rabbitmq transport is closed', { retryable: false }));
    }
    if (this.#state === 'idle') {
      return Promise.reject(
        new TransportError('rabbitmq transport is not connected (call connect first)', { retryable: false }),
      );
    }
    return new Promise<ChannelModel>((resolve, reject) => {
      const cancel = this.clock.setTimer(() => {
        this.#waiters.delete(waiter);
        reject(new TransportError(`RabbitMQ at ${this.#display} still unreachable after ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = { resolve, reject, cancel };
      this.#waiters.add(waiter);
    });
  }

  /** Closes at once; unacked deliveries go back to their queues. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#cancelRetry?.();
    for (const waiter of this.#waiters) {
      waiter.cancel();
      waiter.reject(new TransportError('rabbitmq transport closed', { retryable: false }));
    }
    this.#waiters.clear();
    const model = this.#model;
    this.#model = undefined;
    if (model) await this.#closeModel(model);
  }

  /**
   * Closes `model`, within `connectTimeoutMs`: amqplib's close waits for the broker's reply, which a
   * hung broker never sends (its promise stays pending even after the heartbeat gave the connection
   * up), and a reconnection that awaited it would never try again. Past the deadline the socket is
   * destroyed; what was unacknowledged on it goes back to the queues once the broker notices.
   * Real time, not the bus's clock: closing must end whether or not a test moves the clock.
   */
  async #closeModel(model: ChannelModel): Promise<void> {
    try {
      await withTimeout(model.close(), this.config.connectTimeoutMs, () => new Error('close timed out'));
    } catch {
      // Refused (already closing or closed) or timed out: make sure the socket is gone.
      (model.connection as { stream?: { destroy?: () => void } }).stream?.destroy?.();
    }
  }
}
