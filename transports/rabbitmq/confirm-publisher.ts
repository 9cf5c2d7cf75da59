import type { ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import type { Logger } from 'pino';
import { errorText, TransportError } from '../../src/transport-core/index.js';

/** The broker had no queue to route a mandatory publish to (it returned the message). */
export class UnroutableError extends TransportError {
  constructor(exchange: string, routingKey: string) {
    super(
      exchange === ''
        ? `no queue "${routingKey}" on the broker: the message was returned, not stored`
        : `exchange "${exchange}" routed the message to no queue: it was returned, not stored`,
      { retryable: false },
    );
  }
}

/** The broker nacked a publish (internal error, or a queue refusing it): it was not stored. */
export class PublishNackedError extends TransportError {
  constructor(routingKey: string) {
    super(`the broker refused a message for "${routingKey}" (publisher confirm nack)`, { retryable: true });
  }
}

/** A publish channel closed before the broker confirmed: the message may or may not be stored. */
export class ConfirmLostError extends TransportError {
  constructor(cause: unknown) {
    super(`the channel closed before the broker confirmed the message: ${errorText(cause)}`, {
      retryable: true,
      cause,
    });
  }
}

/** Where a message goes. `mandatory` makes an unroutable message fail instead of vanish. */
export interface PublishTarget {
  readonly exchange: string;
  readonly routingKey: string;
  readonly mandatory: boolean;
}

interface Pending {
  returned: boolean;
}

/**
 * Publishes with publisher confirms over one confirm channel per connection. `publish` resolves
 * once the broker has the message (persistent messages: on disk or replicated) and rejects with
 * {@link UnroutableError} when a mandatory message was returned, {@link PublishNackedError} on a nack,
 * or {@link ConfirmLostError} when the channel closed first. Concurrent publishes share the channel.
 */
export class ConfirmPublisher {
  #model: ChannelModel | undefined;
  #channel: Promise<ConfirmChannel> | undefined;
  /** Mandatory publishes awaiting their confirm, by exchange + routing key + message id. */
  readonly #pending = new Map<string, Pending[]>();

  constructor(private readonly logger: Logger) {}

  /** The confirm channel on `model`, opened on first use and reopened after a channel error. */
  channel(model: ChannelModel): Promise<ConfirmChannel> {
    if (this.#model !== model || !this.#channel) {
      this.#model = model;
      const opening = model.createConfirmChannel().then((channel) => {
        channel.on('error', (error: Error) => this.logger.warn({ error: errorText(error) }, 'publish channel error'));
        channel.on('close', () => {
          if (this.#channel === opening) this.#channel = undefined;
        });
        channel.on('return', (message: Message) => this.#onReturn(message));
        return channel;
      });
      opening.catch(() => {
        if (this.#channel === opening) this.#channel = undefined;
      });
      this.#channel = opening;
    }
    return this.#channel;
  }

  #onReturn(message: Message): void {
    const key = pendingKey(message.fields.exchange, message.fields.routingKey, message.properties.messageId);
    const list = this.#pending.get(key);
    const first = list?.find((p) => !p.returned);
    if (first) first.returned = true;
  }

  async publish(model: ChannelModel, target: PublishTarget, content: Buffer, options: Options.Publish): Promise<void> {
    const channel = await this.channel(model);
    const { exchange, routingKey, mandatory } = target;
    let pending: Pending | undefined;
    let key = '';
    if (mandatory) {
      key = pendingKey(exchange, routingKey, options.messageId);
      pending = { returned: false };
      const list = this.#pending.get(key);
      if (list) list.push(pending);
      else this.#pending.set(key, [pending]);
    }
    try {
      await new Promise<void>((resolve, reject) => {
        try {
          channel.publish(
            exchange,
            routingKey,
            content,
            mandatory ? { ...options, mandatory } : options,
            (error: unknown) => {
              if (pending?.returned) reject(new UnroutableError(exchange, routingKey));
              else if (error === null || error === undefined) resolve();
              else if (isNack(error)) reject(new PublishNackedError(routingKey));
              else reject(new ConfirmLostError(error));
            },
          );
        } catch (error) {
          // amqplib throws synchronously on a closed channel, an oversized header table (RangeError)
          // or a property it cannot encode (TypeError): the last two fail the same way every time.
          reject(
            error instanceof RangeError || error instanceof TypeError
              ? new TransportError(errorText(error), { retryable: false, cause: error })
              : new ConfirmLostError(error),
          );
        }
      });
    } finally {
      if (pending) {
        const list = this.#pending.get(key);
        const i = list?.indexOf(pending) ?? -1;
        if (list && i >= 0) list.splice(i, 1);
        if (list?.length === 0) this.#pending.delete(key);
      }
    }
  }
}

function pendingKey(exchange: string, routingKey: string, messageId: unknown): string {
  return `${exchange}\u0000${routingKey}\u0000${String(messageId)}`;
}

/** amqplib confirms a nack with an Error whose message is 'message nacked'. */
function isNack(error: unknown): boolean {
  return error instanceof Error && /nack/i.test(error.message);
}
