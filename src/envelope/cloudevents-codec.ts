import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { type CloudEvent, CloudEventSchema, type Envelope, type EnvelopeOptions, NUL } from './envelope.js';
import { checkTimestamp, isValidTimestamp } from './timestamp.js';

/** Why bytes could not become an envelope. `reason` is stable; `description` names field and rule. */
export interface DecodeFailure {
  ok: false;
  reason: 'undecodable' | 'invalid-envelope' | 'local-time-timestamp';
  description: string;
}
export type DecodeResult = { ok: true; envelope: Envelope } | DecodeFailure;

/** Turns bytes into an envelope and back. Pure: no I/O, never throws on bad input. */
export interface EnvelopeCodec {
  readonly contentType: string;
  decode(body: Uint8Array): DecodeResult;
  encode(envelope: Envelope): Buffer;
  /**
   * The rules `decode` enforces, applied to an envelope before it is encoded: the failure a
   * consumer would dead-letter the message with, or undefined when it passes. The bus calls it on
   * every publish and send. Optional: without it the bus decodes the encoded bytes instead (the
   * same rules, one parse more). The description names the `EnvelopeOptions` field.
   */
  check?(envelope: Envelope): DecodeFailure | undefined;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** The default wire format: CloudEvents 1.0 structured JSON (`application/cloudevents+json`). */
export const cloudEventsCodec: EnvelopeCodec = {
  contentType: 'application/cloudevents+json; charset=utf-8',

  decode(body) {
    let text: string;
    try {
      text = decoder.decode(body);
    } catch {
      return { ok: false, reason: 'undecodable', description: 'body is not valid UTF-8' };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      return {
        ok: false,
        reason: 'undecodable',
        description: `body is not JSON: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      return { ok: false, reason: 'undecodable', description: 'body is not a JSON object (a CloudEvent)' };
    }
    // Most events are valid: a direct check accepts them without zod's allocations. Anything it
    // does not accept goes through the zod schema, the source of truth for rules and messages.
    let ce: CloudEvent;
    if (isPlainValidCloudEvent(json)) {
      ce = json;
    } else {
      const parsed = CloudEventSchema.safeParse(json);
      if (!parsed.success) return envelopeFailure(parsed.error);
      ce = parsed.data;
    }
    return {
      ok: true,
      envelope: {
        id: ce.id,
        type: ce.type,
        source: ce.source,
        occurredAt: ce.time,
        key: ce.subject,
        tombstone: ce.tombstone === true,
        correlationId: ce.correlationid,
        causationId: ce.causationid,
        data: ce.data,
        traceparent: typeof ce.traceparent === 'string' ? ce.traceparent : undefined,
        tracestate: typeof ce.tracestate === 'string' ? ce.tracestate : undefined,
      },
    };
  },

  encode(envelope) {
    return Buffer.from(JSON.stringify(toCloudEvent(envelope)));
  },

  check(envelope) {
    // The very checks `decode` runs (fast path, then the zod schema for the failure's wording).
    const ce = toCloudEvent(envelope);
    if (isPlainValidCloudEvent(ce)) return undefined;
    const parsed = CloudEventSchema.safeParse(ce);
    return parsed.success ? undefined : envelopeFailure(parsed.error, ENVELOPE_FIELD);
  },
};

function toCloudEvent(envelope: Envelope): CloudEvent {
  const ce: CloudEvent = {
    specversion: '1.0',
    id: envelope.id,
    source: envelope.source,
    type: envelope.type,
    time: envelope.occurredAt,
    datacontenttype: 'application/json',
  };
  if (envelope.key !== undefined) ce.subject = envelope.key;
  if (envelope.correlationId !== undefined) ce.correlationid = envelope.correlationId;
  if (envelope.causationId !== undefined) ce.causationid = envelope.causationId;
  if (envelope.tombstone) ce.tombstone = true;
  if (envelope.data !== undefined) ce.data = envelope.data;
  if (envelope.traceparent !== undefined) ce.traceparent = envelope.traceparent;
  if (envelope.tracestate !== undefined) ce.tracestate = envelope.tracestate;
  return ce;
}

/** CloudEvents attribute → the envelope field a producer sets, for failures found before encoding. */
const ENVELOPE_FIELD: Readonly<Record<string, string>> = {
  id: 'id',
  source: 'source (the service name)',
  type: 'type (the contract type)',
  time: 'occurredAt',
  subject: 'key',
  correlationid: 'correlationId',
  causationid: 'causationId',
};

function envelopeFailure(error: z.ZodError, names: Readonly<Record<string, string>> = {}): DecodeFailure {
  const issue = error.issues[0];
  const name = (path: readonly PropertyKey[]) => {
    const joined = path.map(String).join('.') || '(root)';
    return names[joined] ?? joined;
  };
  const rule = (issue as { params?: { rule?: string } } | undefined)?.params?.rule;
  return {
    ok: false,
    reason: rule === 'missing-offset' ? 'local-time-timestamp' : 'invalid-envelope',
    description: error.issues.map((i) => `${name(i.path)}: ${i.message}`).join('; ') || name(issue?.path ?? []),
  };
}

/** Builds an outgoing envelope; throws a TypeError for a timestamp that breaks the rule. */
export function createEnvelope<T>(type: string, source: string, data: T, options: EnvelopeOptions = {}): Envelope<T> {
  let occurredAt: string;
  if (options.occurredAt === undefined) occurredAt = new Date().toISOString();
  else if (options.occurredAt instanceof Date) occurredAt = options.occurredAt.toISOString();
  else {
    const check = checkTimestamp(options.occurredAt);
    if (!check.ok) {
      throw new TypeError(
        `occurredAt "${options.occurredAt}" must be RFC 3339 with an explicit offset (${check.rule})`,
      );
    }
    occurredAt = options.occurredAt;
  }
  return {
    id: options.id ?? randomUUID(),
    type,
    source,
    occurredAt,
    key: options.key,
    tombstone: options.tombstone === true,
    correlationId: options.correlationId,
    causationId: options.causationId,
    data,
  };
}

const str = (v: unknown, min: number, max: number): boolean =>
  typeof v === 'string' && v.length >= min && v.length <= max && !v.includes(NUL);
const optStr = (v: unknown, min: number, max: number): boolean => v === undefined || str(v, min, max);

/**
 * True only for what `CloudEventSchema` accepts unchanged (it has no transforms or defaults). A
 * property test (test/unit/cloudevents-fast-path.test.ts) checks it never accepts what zod rejects.
 */
export function isPlainValidCloudEvent(json: object): json is CloudEvent {
  const ce = json as Record<string, unknown>;
  return (
    ce.specversion === '1.0' &&
    str(ce.id, 1, 256) &&
    str(ce.source, 1, 1024) &&
    str(ce.type, 1, 256) &&
    typeof ce.time === 'string' &&
    isValidTimestamp(ce.time) &&
    (ce.datacontenttype === undefined || typeof ce.datacontenttype === 'string') &&
    (ce.dataschema === undefined || typeof ce.dataschema === 'string') &&
    optStr(ce.subject, 1, 1024) &&
    optStr(ce.correlationid, 1, 256) &&
    optStr(ce.causationid, 1, 256) &&
    (ce.tombstone === undefined || typeof ce.tombstone === 'boolean')
  );
}

/**
 * Why an envelope could not be stored whole as JSON (`storeEnvelope`), or undefined when it can.
 * PostgreSQL `jsonb` refuses the escape of a NUL character (`\u0000`) and the escape of an unpaired
 * UTF-16 surrogate, which is how `JSON.stringify` writes them; nothing else in a decoded event
 * stops it. `json` is `JSON.stringify(envelope)`.
 */
export function unstorableJson(json: string): string | undefined {
  if (!json.includes('\\u')) return undefined;
  // Walk escapes left to right, so that an escaped backslash followed by "u0000" is not taken for one.
  for (const match of json.matchAll(/\\(?:u(0000|d[89a-f][0-9a-f]{2})|[^u]|u[0-9a-f]{4})/g)) {
    const code = match[1];
    if (code === '0000') return 'contains the NUL character (U+0000)';
    if (code !== undefined) return `contains an unpaired UTF-16 surrogate (U+${code.toUpperCase()})`;
  }
  return undefined;
}
