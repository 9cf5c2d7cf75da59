import type { MessageContract, MessageInputOf } from '../contracts/define-message.js';
import type { OutgoingOptions } from '../contracts/message-context.js';
import { createEnvelope } from '../envelope/cloudevents-codec.js';
import { encodeOutgoing } from '../envelope/encode-outgoing.js';
import { type Envelope, type EnvelopeOptions, NUL } from '../envelope/envelope.js';
import { InvalidOutgoingMessageError, LifecycleError } from '../errors/sluice-error.js';
import type { OutboxMessage } from '../outbox/outbox-store.js';
import { ProducerTelemetry } from '../telemetry/producer-telemetry.js';
import { type TraceFields, traceHeaders } from '../telemetry/trace-context.js';
import type { OutgoingMessage } from '../transport-core/transport.js';
import type { BusParts, BusState } from './bus-parts.js';

/**
 * What the bus sends: `publish` and `send` to the broker at once, or `stage` into an outbox list
 * (written in the caller's transaction). Each message is built and checked here (schema, envelope
 * rules, `occurredAt` on the bus's clock) under a producer span, before anything goes out.
 */
export class BusProducer {
  readonly #telemetry: ProducerTelemetry;

  constructor(
    private readonly parts: Pick<BusParts, 'transport' | 'registrations' | 'clock' | 'codec' | 'config'>,
    private readonly state: () => BusState,
  ) {
    this.#telemetry = new ProducerTelemetry(() => parts.transport.kind);
  }

  /** Publishes an event to every endpoint that handles its type. Resolves once the broker has it. */
  async publish<C extends MessageContract>(
    contract: C,
    data: MessageInputOf<C>,
    options: EnvelopeOptions = {},
  ): Promise<string> {
    return this.#telemetry.run('publish', contract.type, async (trace) => {
      const message = this.outgoing(contract, data, options, trace);
      await this.parts.transport.publish(message);
      return message;
    });
  }

  /** Sends a command to one endpoint: a local endpoint's name, or any broker address. */
  async send<C extends MessageContract>(
    endpoint: string,
    contract: C,
    data: MessageInputOf<C>,
    options: EnvelopeOptions = {},
  ): Promise<string> {
    const address = this.addressOf(endpoint);
    return this.#telemetry.run('send', address, async (trace) => {
      checkAddress(address);
      const message = this.outgoing(contract, data, options, trace);
      await this.parts.transport.send(address, message);
      return message;
    });
  }

  /** The broker address of a local endpoint's name; anything else is an address already. */
  addressOf(endpoint: string): string {
    return this.parts.registrations.get(endpoint)?.config.address ?? endpoint;
  }

  /**
   * Builds and checks a message now (a bad one throws here, at the call, as an immediate publish
   * would) and appends it to `outbox`, to be written in the caller's transaction.
   */
  stage(
    outbox: OutboxMessage[],
    kind: 'publish' | 'send',
    destination: string,
    contract: MessageContract,
    data: unknown,
    options: EnvelopeOptions,
    source: string | undefined,
  ): Promise<string> {
    return this.#telemetry.run(kind, destination, async (trace) => {
      if (kind === 'send') checkAddress(destination);
      const message = this.outgoing(contract, data, options, trace);
      outbox.push(outboxMessageOf(message, kind, destination, source, options.causationId));
      return message;
    });
  }

  /** Builds and checks one outgoing message on the bus's clock; throws before the bus started. */
  outgoing(
    contract: MessageContract,
    data: unknown,
    options: EnvelopeOptions & OutgoingOptions,
    trace: TraceFields | undefined,
  ) {
    if (this.state() !== 'started' && this.state() !== 'stopping') {
      throw new LifecycleError(`cannot send before the bus has started (bus is ${this.state()})`);
    }
    const parsed = contract.schema.safeParse(data);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `data.${i.path.join('.')}: ${i.message}`).join('; ');
      throw new InvalidOutgoingMessageError(`${contract.type}: ${problems}`);
    }
    let created: Envelope;
    try {
      // Stamped on the bus's clock, so that a manual clock's consumers do not see it in the future.
      const stamped =
        options.occurredAt === undefined ? { ...options, occurredAt: new Date(this.parts.clock.now()) } : options;
      created = createEnvelope(contract.type, this.parts.config.service, parsed.data, stamped);
    } catch (error) {
      // createEnvelope's TypeError: an occurredAt string that breaks the timestamp rule.
      if (!(error instanceof TypeError)) throw error;
      throw new InvalidOutgoingMessageError(`${contract.type}: ${error.message}`, { cause: error });
    }
    // The producer span's context travels in the envelope (CloudEvents tracing extension) and headers.
    const envelope = trace === undefined ? created : { ...created, ...trace };
    return {
      messageId: envelope.id,
      // The consumer's envelope rules (id, key, correlation ids, ...) checked here: a message its
      // consumers would dead-letter as invalid-envelope fails the publish instead.
      body: encodeOutgoing(this.parts.codec, envelope),
      headers: traceHeaders(trace),
      contentType: this.parts.codec.contentType,
      key: envelope.key,
      messageType: envelope.type,
    };
  }
}

/**
 * An address to send to: one taken from a message (a reply-to) is checked like the envelope's
 * attributes (no store holds a NUL character; PostgreSQL refuses it), at the call.
 */
function checkAddress(address: string): void {
  if (address.length === 0 || address.includes(NUL)) {
    throw new InvalidOutgoingMessageError(
      `send: the address ${JSON.stringify(address)} is empty or contains the NUL character (U+0000)`,
    );
  }
}

/** The outbox row of a message built by `#outgoing`. */
function outboxMessageOf(
  message: OutgoingMessage,
  kind: 'publish' | 'send',
  destination: string,
  source: string | undefined,
  causationId: string | undefined,
): OutboxMessage {
  return {
    messageId: message.messageId,
    destinationKind: kind,
    destination,
    messageType: message.messageType,
    key: message.key,
    headers: message.headers,
    body: message.body,
    sourceEndpoint: source,
    causationId,
  };
}
