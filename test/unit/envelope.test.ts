import { describe, expect, it } from 'vitest';
import { cloudEventsCodec, createEnvelope, unstorableJson } from '../../src/envelope/cloudevents-codec.js';
import { checkTimestamp, compareInstants } from '../../src/envelope/timestamp.js';

const valid = {
  specversion: '1.0',
  id: 'm-1',
  source: 'orders-service',
  type: 'orders.order-placed.v1',
  time: '2026-11-22T10:00:00.123+01:00',
  subject: 'order-1',
  data: { orderId: 'order-1' },
};
const bytes = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('timestamp rule', () => {
  it.each([
    ['2026-11-22T10:00:00Z'],
    ['2026-11-22T10:00:00.123456789Z'],
    ['2026-11-22T10:00:00+05:30'],
    ['2026-11-22t10:00:00-08:00'],
  ])('accepts %s', (text) => {
    expect(checkTimestamp(text).ok).toBe(true);
  });

  it('rejects a local-time timestamp as missing-offset', () => {
    expect(checkTimestamp('2026-11-22T10:00:00')).toEqual({ ok: false, rule: 'missing-offset' });
  });

  it.each([['2026-02-30T10:00:00Z'], ['2026-11-22T24:00:00Z'], ['2026-11-22T10:00:00+24:00']])(
    'rejects the impossible date-time %s',
    (text) => {
      expect(checkTimestamp(text)).toEqual({ ok: false, rule: 'out-of-range' });
    },
  );

  it.each([['22/11/2026'], ['2026-11-22'], ['1700000000'], ['2026-11-22 10:00:00Z']])(
    'rejects the non-RFC 3339 %s',
    (text) => {
      expect(checkTimestamp(text)).toEqual({ ok: false, rule: 'format' });
    },
  );

  it('compares instants across offsets at full precision', () => {
    const a = checkTimestamp('2026-11-22T10:00:00.000000001Z');
    const b = checkTimestamp('2026-11-22T11:00:00.000000002+01:00');
    if (!a.ok || !b.ok) throw new Error('parse');
    expect(compareInstants(a.instant, b.instant)).toBeLessThan(0);
    const c = checkTimestamp('2026-11-22T05:00:00.000000001-05:00');
    if (!c.ok) throw new Error('parse');
    expect(compareInstants(a.instant, c.instant)).toBe(0);
  });
});

describe('CloudEvents codec', () => {
  it('decodes a structured CloudEvent into an envelope', () => {
    const result = cloudEventsCodec.decode(
      bytes({ ...valid, correlationid: 'c-1', causationid: 'k-1', tombstone: true }),
    );
    expect(result).toEqual({
      ok: true,
      envelope: {
        id: 'm-1',
        type: 'orders.order-placed.v1',
        source: 'orders-service',
        occurredAt: '2026-11-22T10:00:00.123+01:00',
        key: 'order-1',
        tombstone: true,
        correlationId: 'c-1',
        causationId: 'k-1',
        data: { orderId: 'order-1' },
      },
    });
  });

  it('round-trips what it encodes', () => {
    const envelope = createEnvelope('a.b.v1', 'svc', { n: 1 }, { key: 'k', correlationId: 'c' });
    const decoded = cloudEventsCodec.decode(cloudEventsCodec.encode(envelope));
    expect(decoded).toEqual({ ok: true, envelope });
  });

  it('calls bytes that are not UTF-8 undecodable', () => {
    const result = cloudEventsCodec.decode(Buffer.from([0xff, 0xfe, 0x7b]));
    expect(result).toEqual({ ok: false, reason: 'undecodable', description: 'body is not valid UTF-8' });
  });

  it('calls text that is not JSON undecodable and says why', () => {
    const result = cloudEventsCodec.decode(bytes('{"id": '));
    expect(result).toMatchObject({ ok: false, reason: 'undecodable' });
    if (!result.ok) expect(result.description).toMatch(/^body is not JSON: /);
  });

  it('calls a JSON array undecodable', () => {
    expect(cloudEventsCodec.decode(bytes([1, 2]))).toMatchObject({ ok: false, reason: 'undecodable' });
  });

  it('names the missing field of an invalid envelope', () => {
    const { id: _id, ...noId } = valid;
    const result = cloudEventsCodec.decode(bytes(noId));
    expect(result).toMatchObject({ ok: false, reason: 'invalid-envelope' });
    if (!result.ok) expect(result.description).toMatch(/^id: /);
  });

  it('rejects another CloudEvents spec version, naming the field', () => {
    const result = cloudEventsCodec.decode(bytes({ ...valid, specversion: '0.3' }));
    expect(result).toMatchObject({ ok: false, reason: 'invalid-envelope' });
    if (!result.ok) expect(result.description).toMatch(/specversion/);
  });

  it('requires time', () => {
    const { time: _time, ...noTime } = valid;
    const result = cloudEventsCodec.decode(bytes(noTime));
    expect(result).toMatchObject({ ok: false, reason: 'invalid-envelope' });
    if (!result.ok) expect(result.description).toMatch(/^time: /);
  });

  it('gives a local-time timestamp its own reason, naming the field and rule', () => {
    const result = cloudEventsCodec.decode(bytes({ ...valid, time: '2026-11-22T10:00:00' }));
    expect(result).toMatchObject({ ok: false, reason: 'local-time-timestamp' });
    if (!result.ok) expect(result.description).toMatch(/^time: local-time timestamp .* has no offset/);
  });

  it('keeps business data to `data`: unknown top-level attributes never become data', () => {
    const result = cloudEventsCodec.decode(bytes({ ...valid, data: undefined, orderId: 'from-outside' }));
    expect(result.ok && result.envelope.data).toBeUndefined();
  });

  it('refuses to create an envelope with a local-time occurredAt', () => {
    expect(() => createEnvelope('a.b.v1', 'svc', {}, { occurredAt: '2026-11-22T10:00:00' })).toThrow(/explicit offset/);
  });
});

describe('what no store can hold', () => {
  it.each(['id', 'type', 'source', 'subject', 'correlationid', 'causationid'])(
    'rejects a NUL character in %s as an invalid envelope, naming the field',
    (field) => {
      const result = cloudEventsCodec.decode(bytes({ ...valid, [field]: 'order\u0000-1' }));
      expect(result).toMatchObject({ ok: false, reason: 'invalid-envelope' });
      expect(result.ok ? '' : result.description).toBe(`${field}: must not contain the NUL character (U+0000)`);
    },
  );

  it("accepts a NUL character in the data: it is the handler's to store", () => {
    const result = cloudEventsCodec.decode(bytes({ ...valid, data: { note: 'a\u0000b' } }));
    expect(result.ok).toBe(true);
  });

  it('finds what PostgreSQL jsonb refuses in an envelope serialised as JSON', () => {
    expect(unstorableJson(JSON.stringify({ note: 'a\u0000b' }))).toBe('contains the NUL character (U+0000)');
    expect(unstorableJson(JSON.stringify({ note: 'lone \udc00 low' }))).toBe(
      'contains an unpaired UTF-16 surrogate (U+DC00)',
    );
    expect(unstorableJson(JSON.stringify({ note: 'lone \ud83d high' }))).toBe(
      'contains an unpaired UTF-16 surrogate (U+D83D)',
    );
    // A paired surrogate (an emoji), a backslash followed by "u0000" as text, other control characters: all fine.
    expect(
      unstorableJson(JSON.stringify({ note: 'ok \ud83d\ude00', path: 'C:\\u0000', bell: '\u0007' })),
    ).toBeUndefined();
  });
});
