import { z } from 'zod';
import { checkTimestamp } from './timestamp.js';

/**
 * The transport-neutral message. On the wire it is a CloudEvents 1.0 structured JSON event
 * (see `cloudevents-codec.ts`); here the fields carry Sluice's names.
 */
export interface Envelope<T = unknown> {
  /** Unique per message; the inbox deduplicates on it. */
  readonly id: string;
  /** The contract's type name, e.g. `orders.order-placed.v1`. */
  readonly type: string;
  /** The producer (CloudEvents `source`), e.g. `/orders-service`. */
  readonly source: string;
  /** When the fact happened at the producer: RFC 3339 with an explicit offset, as sent. */
  readonly occurredAt: string;
  /** The entity or partition key (CloudEvents `subject`). */
  readonly key: string | undefined;
  /** The entity was deleted; `data` may be empty. */
  readonly tombstone: boolean;
  readonly correlationId: string | undefined;
  readonly causationId: string | undefined;
  /** The business data: read from the event's `data` only, never from transport headers. */
  readonly data: T;
  /**
   * W3C trace context of the producer's span (CloudEvents Distributed Tracing extension). Set by
   * `publish`/`send` when a span is active; a malformed value is ignored, never a reason to reject.
   */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

const timestamp = z.string().superRefine((value, ctx) => {
  const check = checkTimestamp(value);
  if (check.ok) return;
  ctx.addIssue({
    code: 'custom',
    message:
      check.rule === 'missing-offset'
        ? `local-time timestamp "${value}" has no offset; use Z or ±hh:mm (RFC 3339)`
        : check.rule === 'out-of-range'
          ? `timestamp "${value}" is not a valid date-time`
          : `timestamp "${value}" is not RFC 3339 (yyyy-mm-ddThh:mm:ss[.fraction](Z|±hh:mm))`,
    params: { rule: check.rule },
  });
});

/** The NUL character: no inbox store can hold it in a key column (PostgreSQL text refuses it). */
export const NUL = '\u0000';

/**
 * An attribute Sluice stores, logs and sends on as a header: 1..max characters, no NUL. A NUL in
 * an id, a type or a key is a producer's bug, and PostgreSQL cannot store it: rejected at decode
 * (`invalid-envelope`) rather than failing the inbox claim on every attempt.
 */
const attribute = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((value) => !value.includes(NUL), 'must not contain the NUL character (U+0000)');

/**
 * CloudEvents 1.0 structured-mode JSON, as Sluice accepts it. `time` is required (the spec makes
 * it optional) because ordering and audit depend on it. Unknown extension attributes are kept;
 * `traceparent`/`tracestate` (Distributed Tracing extension) are read by the codec when they are strings.
 */
export const CloudEventSchema = z.looseObject({
  specversion: z.literal('1.0'),
  id: attribute(256),
  source: attribute(1024),
  type: attribute(256),
  time: timestamp,
  datacontenttype: z.string().optional(),
  dataschema: z.string().optional(),
  subject: attribute(1024).optional(),
  correlationid: attribute(256).optional(),
  causationid: attribute(256).optional(),
  tombstone: z.boolean().optional(),
  data: z.unknown().optional(),
});
export type CloudEvent = z.infer<typeof CloudEventSchema>;

/** Options accepted when creating an outgoing envelope. */
export interface EnvelopeOptions {
  /** Defaults to a random UUID. Give a stable id to make a re-send a duplicate. */
  id?: string;
  key?: string;
  /** Defaults to now, in UTC. A `Date` is written with `Z`; a string must carry an offset. */
  occurredAt?: Date | string;
  tombstone?: boolean;
  correlationId?: string;
  causationId?: string;
}
