import type { ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import type { Consumer, DeliveryCallback } from '../../src/transport/index.js';
import { ConsumerChannel } from './consumer-channel.js';
import { describe } from './rabbitmq-connection.js';
import { RabbitmqDelivery, type SettlementRoutes } from './rabbitmq-delivery.js';

let nextChannelId = 1;

/**
 * A consumer of one queue on its own channel, with `basic.qos` prefetch = the endpoint's in-flight
 * limit and manual acks. Pause cancels the AMQP consumer (held deliveries may still settle); resume
 * consumes again. After a reconnection the transport calls {@link open} with the new connection:
 * the consumer comes back in the state it had (paused stays paused).
 */
export class RabbitmqConsumer implements Consumer {
  #paused = false;
  #closed = false;
  #channel: ConsumerChannel | undefined;
  #tag: string | undefined;
  #toggling: Promise<void> = Promise.resolve();

  constructor(
    private readonly queue: string,
    private readonly callback: DeliveryCallback,
    private readonly prefetch: number,
    private readonly routes: SettlementRoutes,
    private readonly logger: Logger,
    private readonly onClosed: (consumer: RabbitmqConsumer) => void,
  ) {}

  get inFlight(): number {
    return this.#channel?.alive ? this.#channel.unsettled : 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Opens a channel on `model` and consumes unless paused. Called at start and after reconnecting.
   * Runs in the same queue as pause, resume and close, so a pause or close that races a
   * reconnection is applied to the new channel, never lost, and never doubles the consumer.
   */
  open(model: ChannelModel): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) return;
      this.#channel?.lost();
      const raw = await model.createChannel();
      if (this.#closed) {
        await raw.close().catch(() => {});
        return;
      }
      const channel = new ConsumerChannel(raw, nextChannelId++);
      raw.on('error', (error: Error) =>
        this.logger.warn({ queue: this.queue, error: describe(error) }, 'consumer channel error'),
      );
      raw.on('close', () => channel.lost());
      this.#channel = channel;
      this.#tag = undefined;
      await raw.prefetch(this.prefetch, false);
      if (!this.#paused && !this.#closed) await this.#consume(channel);
    });
  }

  async #consume(channel: ConsumerChannel): Promise<void> {
    const reply = await channel.channel.consume(this.queue, (message) => this.#onMessage(channel, message), {
      noAck: false,
    });
    this.#tag = reply.consumerTag;
  }

  #onMessage(channel: ConsumerChannel, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled us (queue deleted): nothing more comes on this channel.
      this.#tag = undefined;
      this.logger.warn({ queue: this.queue }, 'the broker cancelled the consumer (queue deleted?)');
      return;
    }
    channel.handedOut(message);
    const delivery = new RabbitmqDelivery(message, channel, this.routes);
    try {
      this.callback(delivery);
    } catch (error) {
      // A callback must not throw; if it does, the message goes back rather than being lost.
      this.logger.error({ error: describe(error) }, 'delivery callback threw; returning the message');
      if (channel.alive) channel.nack(message, true);
    }
  }

  /** Runs pause/resume one after another so that consume and cancel never interleave. */
  #serial(step: () => Promise<void>): Promise<void> {
    const run = this.#toggling.then(step, step);
    this.#toggling = run.catch(() => {});
    return run;
  }

  pause(): Promise<void> {
    return this.#serial(async () => {
      if (this.#paused) return;
      this.#paused = true;
      await this.#cancel();
    });
  }

  resume(): Promise<void> {
    return this.#serial(async () => {
      if (!this.#paused || this.#closed) return;
      this.#paused = false;
      const channel = this.#channel;
      // While reconnecting there is no channel: the reconnection consumes since we are not paused.
      if (channel?.alive && this.#tag === undefined) await this.#consume(channel);
    });
  }

  async #cancel(): Promise<void> {
    const channel = this.#channel;
    const tag = this.#tag;
    this.#tag = undefined;
    if (!channel?.alive || tag === undefined) return;
    try {
      await channel.channel.cancel(tag);
    } catch (error) {
      if (channel.alive) throw error;
    }
  }

  async close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#serial(() => this.#cancel()).catch(() => {});
    const channel = this.#channel;
    const drainTimeoutMs = options.drainTimeoutMs ?? 0;
    if (channel?.alive && channel.unsettled > 0 && drainTimeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainTimeoutMs);
        channel.onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      channel.onIdle = undefined;
    }
    if (channel?.alive) {
      // Let coalesced acks of this turn be written before the channel goes (its unacked return).
      await new Promise((resolve) => setImmediate(resolve));
      await channel.channel.close().catch(() => {});
      channel.lost();
    }
    this.onClosed(this);
  }

  /** The connection went away: held deliveries are the broker's again. */
  connectionLost(): void {
    this.#channel?.lost();
    this.#tag = undefined;
  }
}
