import type { MessageContract, MessageOf } from '../contracts/define-message.js';
import type { EnvelopeCodec } from '../envelope/cloudevents-codec.js';
import type { Envelope } from '../envelope/envelope.js';
import type { FaultDetails } from '../errors/fault.js';
import type { DeliveryContext, ValidatedContext } from '../pipeline/context.js';
import type { Outcome, SkipReason } from '../pipeline/outcome.js';
import type { OutgoingMessage } from '../transport-core/transport.js';
import { SluiceHeader } from '../transport-core/headers.js';

/** Where a recorded delivery was handled: which bus of the harness (0: `harness.bus`), which endpoint. */
export interface HandledAt {
  /** 0 for `harness.bus`, then 1, 2, ... for each `harness.addInstance()`. */
  readonly instance: number;
  readonly endpoint: string;
}

/** A delivery, each time it left an endpoint: with the outcome it was settled with. */
export interface OutcomeRecord extends HandledAt {
  /** The settled outcome; `undefined`: it could not be settled (lock lost), and comes back. */
  readonly outcome: Outcome | undefined;
  /** The envelope, when the body could be decoded. */
  readonly envelope: Envelope | undefined;
  /** The data as the handler saw it, when it passed its contract's schema. */
  readonly message: unknown;
  readonly validated: boolean;
  /** The broker's delivery count (1 on first delivery). */
  readonly deliveryCount: number;
  /** The attempt that ended it (0 when no handler ran: bad input, released before its turn). */
  readonly attempt: number;
  /** The body as delivered, untouched. */
  readonly body: Buffer;
}

/** A message a handler completed. */
export interface ConsumedMessage<T> extends HandledAt {
  readonly message: T;
  readonly envelope: Envelope<T>;
  readonly attempt: number;
  readonly deliveryCount: number;
}

/** A message dead-lettered, with its fault (reason, description, error, attempts, times). */
export interface DeadLetteredRecord<T> extends HandledAt {
  readonly fault: FaultDetails;
  /** Undefined for a body that is not an envelope (`undecodable`, `invalid-envelope`, ...). */
  readonly envelope: Envelope | undefined;
  /** The data, when it passed the contract's schema (a handler failure); not for bad input. */
  readonly message: T | undefined;
  readonly body: Buffer;
}

/** A message completed without its handler running: duplicate, stale, tombstoned, unknown type, dropped. */
export interface SkippedRecord<T> extends HandledAt {
  readonly reason: SkipReason;
  readonly detail: string | undefined;
  readonly envelope: Envelope | undefined;
  readonly message: T | undefined;
}

/** A message the buses handed to the broker: published (to every subscriber) or sent (to one address). */
export interface OutgoingRecord<T> {
  readonly kind: 'publish' | 'send';
  /** The address of a send; `undefined` for a publish. */
  readonly address: string | undefined;
  readonly message: T;
  readonly envelope: Envelope<T>;
  readonly headers: Readonly<Record<string, string>>;
  /** Which bus handed it over (0: `harness.bus`). */
  readonly instance: number;
}

interface RawOutgoing {
  readonly kind: 'publish' | 'send';
  readonly address: string | undefined;
  readonly envelope: Envelope | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly instance: number;
}

/**
 * What the buses of a test harness did, in the order it happened: every delivery's settled outcome
 * and every message handed to the broker. The typed views select by contract (the envelope's type)
 * and read the data as the contract's consumers do.
 */
export class MessageLog {
  readonly #outcomes: OutcomeRecord[] = [];
  readonly #outgoing: RawOutgoing[] = [];

  constructor(private readonly codec: EnvelopeCodec) {}

  /** Every delivery's exit from its endpoint, in order (retries and releases included). */
  get outcomes(): readonly OutcomeRecord[] {
    return this.#outcomes;
  }

  recordOutcome(instance: number, ctx: DeliveryContext, outcome: Outcome | undefined): void {
    // A DeliveryRun: the fields it proved are set, the others undefined.
    const run = ctx as Partial<ValidatedContext> & DeliveryContext & { attempt?: number };
    const validated = run.route !== undefined;
    this.#outcomes.push({
      instance,
      endpoint: ctx.endpoint.name,
      outcome,
      envelope: run.envelope,
      message: validated ? run.message : undefined,
      validated,
      deliveryCount: ctx.delivery.deliveryCount,
      attempt: run.attempt ?? 0,
      body: ctx.delivery.body,
    });
  }

  recordOutgoing(instance: number, kind: 'publish' | 'send', address: string | undefined, m: OutgoingMessage): void {
    // A copy the endpoint forwards to a skipped queue is the broker's business, not the service's.
    if (m.headers[SluiceHeader.skipReason] !== undefined && m.messageType === '') return;
    const decoded = this.codec.decode(m.body);
    this.#outgoing.push({
      kind,
      address,
      envelope: decoded.ok ? decoded.envelope : undefined,
      headers: m.headers,
      instance,
    });
  }

  consumed<C extends MessageContract>(contract?: C): ConsumedMessage<MessageOf<C>>[] {
    const found: ConsumedMessage<MessageOf<C>>[] = [];
    for (const r of this.#outcomes) {
      if (r.outcome?.kind !== 'completed' || !r.validated || !r.envelope || r.envelope.tombstone) continue;
      if (contract && r.envelope.type !== contract.type) continue;
      found.push({
        instance: r.instance,
        endpoint: r.endpoint,
        message: r.message as MessageOf<C>,
        envelope: r.envelope as Envelope<MessageOf<C>>,
        attempt: r.attempt,
        deliveryCount: r.deliveryCount,
      });
    }
    return found;
  }

  deadLettered<C extends MessageContract>(contract?: C): DeadLetteredRecord<MessageOf<C>>[] {
    const found: DeadLetteredRecord<MessageOf<C>>[] = [];
    for (const r of this.#outcomes) {
      if (r.outcome?.kind !== 'deadLetter') continue;
      if (contract && r.envelope?.type !== contract.type) continue;
      found.push({
        instance: r.instance,
        endpoint: r.endpoint,
        fault: r.outcome.fault,
        envelope: r.envelope,
        message: r.validated ? (r.message as MessageOf<C>) : undefined,
        body: r.body,
      });
    }
    return found;
  }

  skipped<C extends MessageContract>(contract?: C): SkippedRecord<MessageOf<C>>[] {
    const found: SkippedRecord<MessageOf<C>>[] = [];
    for (const r of this.#outcomes) {
      if (r.outcome?.kind !== 'skipped') continue;
      if (contract && r.envelope?.type !== contract.type) continue;
      found.push({
        instance: r.instance,
        endpoint: r.endpoint,
        reason: r.outcome.reason,
        detail: r.outcome.detail,
        envelope: r.envelope,
        message: r.validated ? (r.message as MessageOf<C>) : undefined,
      });
    }
    return found;
  }

  outgoing<C extends MessageContract>(kind: 'publish' | 'send', contract?: C): OutgoingRecord<MessageOf<C>>[] {
    const found: OutgoingRecord<MessageOf<C>>[] = [];
    for (const r of this.#outgoing) {
      if (r.kind !== kind || !r.envelope) continue;
      if (contract && r.envelope.type !== contract.type) continue;
      const message = contract ? readAs(contract, r.envelope) : (r.envelope.data as MessageOf<C>);
      found.push({
        kind: r.kind,
        address: r.address,
        message,
        envelope: { ...r.envelope, data: message },
        headers: r.headers,
        instance: r.instance,
      });
    }
    return found;
  }
}

/** The data of an outgoing envelope as the contract's consumers read it (its schema's output). */
function readAs<C extends MessageContract>(contract: C, envelope: Envelope): MessageOf<C> {
  const parsed = contract.schema.safeParse(envelope.data);
  if (parsed.success) return parsed.data as MessageOf<C>;
  // publish and send check the input, so this is a schema whose output does not read back as input
  // once on the wire (a transform to a type JSON cannot carry): its consumers would dead-letter it.
  const problems = parsed.error.issues.map((i) => `data.${i.path.join('.')}: ${i.message}`).join('; ');
  throw new TypeError(
    `message ${envelope.id} of type ${contract.type} does not read back through its contract's schema ` +
      `(consumers would dead-letter it as schema-violation): ${problems}`,
  );
}
