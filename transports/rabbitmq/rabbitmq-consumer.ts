import type { ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import type { Consumer, ConsumeOptions, DeliveryCallback } from '../../src/transport-core/index.js';
import { ConsumerGate, errorText, Mutex, systemClock } from '../../src/transport-core/index.js';
import { ConsumerChannel } from './consumer-channel.js';
import { RabbitmqDelivery, type SettlementRoutes } from './rabbitmq-delivery.js';

let nextChannelId = 1;

/**
 * A consumer of one queue on its own channel, with `basic.qos` prefetch = the endpoint's in-flight
 * limit and manual acks. Pause cancels the AMQP consumer (held deliveries may still settle); resume
 * consumes again. After a reconnection the transport calls {@link open} with the new connection:
 * the consumer comes back in the state it had (paused stays paused).
 *
 * Two deaths leave the connection up, so no reconnection brings the consumer back: the broker
 * cancels it (`basic.cancel`: its queue deleted, a quorum queue's leader moved), or closes its
 * channel for an error (an unknown delivery tag, a `basic.consume` refused). Either is reported as
 * `stopped` (the owner makes a new consumer); a cancelled consumer's channel stays open, so that
 * its handed-out deliveries can still be acked, until `close()`.
 */
export class RabbitmqConsumer implements Consumer {
  /** Prefetch is the broker's (`basic.qos`); the gate keeps the flags, the drain and the stop report. */
  readonly #gate: ConsumerGate;
  #channel: ConsumerChannel | undefined;
  #tag: string | undefined;
  /** Open, pause, resume and close one after another, so that consume and cancel never interleave. */
  readonly #serial = new Mutex();

  constructor(
    private readonly queue: string,
    private readonly callback: DeliveryCallback,
    /** `paused`: open the channel, but consume only on `resume()`. */
    options: ConsumeOptions,
    private readonly routes: SettlementRoutes,
    private readonly logger: Logger,
    private readonly onClosed: (consumer: RabbitmqConsumer) => void,
  ) {
    this.#gate = new ConsumerGate({
      ...options,
      clock: systemClock,
      logger,
      what: `consumer of queue "${queue}"`,
      inFlight: () => (this.#channel?.alive ? this.#channel.unsettled : 0),
    });
  }

  get inFlight(): number {
    return this.#gate.inFlight;
  }

  get closed(): boolean {
    return this.#gate.closed;
  }

  /** Stopped on its own and reported so: the transport no longer reopens it after reconnecting. */
  get stopped(): boolean {
    return this.#gate.stopped;
  }

  /**
   * Opens a channel on `model` and consumes unless paused. Called at start and after reconnecting.
   * Runs in the same queue as pause, resume and close, so a pause or close that races a
   * reconnection is applied to the new channel, never lost, and never doubles the consumer.
   */
  open(model: ChannelModel): Promise<void> {
    return this.#serial.run(async () => {
      if (this.#gate.closed || this.#gate.stopped) return;
      this.#channel?.lost();
      const raw = await model.createChannel();
      if (this.#gate.closed || this.#gate.stopped) {
        await raw.close().catch(() => {});
        return;
      }
      const channel = new ConsumerChannel(raw, nextChannelId++, () => this.#gate.idle());
      // amqplib emits 'error' on a channel only when the broker closed that channel (not when the
      // connection went: then only 'close', and the transport reopens the consumer on reconnecting).
      let closedBy: Error | undefined;
      raw.on('error', (error: Error) => {
        closedBy = error;
        this.logger.warn({ queue: this.queue, error: errorText(error) }, 'consumer channel error');
      });
      raw.on('close', () => {
        channel.lost();
        if (closedBy && this.#channel === channel) {
          this.#stop(`RabbitMQ closed the consumer channel of queue "${this.queue}"`, closedBy);
        }
      });
      this.#channel = channel;
      this.#tag = undefined;
      await raw.prefetch(this.#gate.prefetch, false);
      if (!this.#gate.held) await this.#consume(channel);
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
      // The broker cancelled us: nothing more comes on this channel, and the connection is fine, so
      // no reconnection would consume again.
      if (channel !== this.#channel) return;
      this.#tag = undefined;
      this.#stop(
        `RabbitMQ cancelled the consumer of queue "${this.queue}" (the queue was deleted, or its leader moved)`,
      );
      return;
    }
    channel.handedOut(message);
    this.#gate.handOut(new RabbitmqDelivery(message, channel, this.routes), this.callback, () => {
      if (channel.alive) channel.nack(message, true);
    });
  }

  pause(): Promise<void> {
    return this.#serial.run(async () => {
      if (this.#gate.pause()) await this.#cancel();
    });
  }

  resume(): Promise<void> {
    return this.#serial.run(async () => {
      if (!this.#gate.resume() || this.#gate.stopped) return;
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
    if (!this.#gate.close()) return;
    await this.#serial.run(() => this.#cancel()).catch(() => {});
    await this.#gate.drain(options.drainTimeoutMs);
    const channel = this.#channel;
    if (channel?.alive) {
      // Let coalesced acks of this turn be written before the channel goes (its unacked return).
      await new Promise((resolve) => setImmediate(resolve));
      await channel.channel.close().catch(() => {});
      channel.lost();
    }
    this.onClosed(this);
  }

  /** Stops for good and says so once (reconnecting the transport does not bring it back). */
  #stop(reason: string, cause?: unknown): void {
    if (this.#gate.stop(reason, cause)) this.#tag = undefined;
  }

  /** The connection went away: held deliveries are the broker's again. */
  connectionLost(): void {
    this.#channel?.lost();
    this.#tag = undefined;
  }
}
