import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkTimestamp, isValidTimestamp, type TimestampCheck } from '../../src/envelope/timestamp.js';

// The rule as a regular expression: the reference the hand-written parser must equal.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})?$/;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const leap = (y: number) => y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);

function reference(text: string): TimestampCheck {
  const m = RFC3339.exec(text);
  if (!m) return { ok: false, rule: 'format' };
  const [, y, mo, d, h, mi, s, frac, offset] = m as unknown as string[];
  if (offset === undefined) return { ok: false, rule: 'missing-offset' };
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const dim = month === 2 && leap(year) ? 29 : (DAYS[month - 1] as number);
  if (month < 1 || month > 12 || day < 1 || day > dim) return { ok: false, rule: 'out-of-range' };
  if (hour > 23 || minute > 59 || second > 60) return { ok: false, rule: 'out-of-range' };
  let offsetMinutes = 0;
  if (offset !== 'Z' && offset !== 'z') {
    const oh = Number(offset.slice(1, 3));
    const om = Number(offset.slice(4, 6));
    if (oh > 23 || om > 59) return { ok: false, rule: 'out-of-range' };
    offsetMinutes = (offset.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  const fraction = (frac ?? '').padEnd(9, '0');
  const epochMs =
    Date.parse(
      `${String(year).padStart(4, '0')}-${mo}-${d}T${h}:${mi}:${String(Math.min(second, 59)).padStart(2, '0')}.${fraction.slice(0, 3)}Z`,
    ) +
    (second === 60 ? 1000 : 0) -
    offsetMinutes * 60_000;
  return { ok: true, instant: { epochMs, nanos: Number(fraction.slice(3)) } };
}

const digit = fc.constantFrom(...'0123456789');
const num = (n: number) => fc.array(digit, { minLength: n, maxLength: n }).map((d) => d.join(''));
/** Two digits: any, or (more often) within `min..max`. */
const part = (min: number, max: number) =>
  fc.oneof(
    { arbitrary: num(2), weight: 1 },
    { arbitrary: fc.integer({ min, max }).map((v) => String(v).padStart(2, '0')), weight: 4 },
  );
/** Mostly well-formed timestamps, each part sometimes out of range or mangled. */
const timestamp = fc
  .tuple(
    fc.oneof(num(4), fc.constantFrom('2000', '1900', '2024', '2023')),
    part(1, 12),
    part(1, 31),
    fc.constantFrom('T', 't', 'T', 't', ' ', 'X'),
    part(0, 23),
    part(0, 59),
    part(0, 60),
    fc.oneof(
      fc.constant(''),
      fc.integer({ min: 0, max: 11 }).chain((n) => num(n).map((f) => `.${f}`)),
    ),
    fc.oneof(
      fc.constantFrom('', 'Z', 'z', 'UTC', '+', '+1:00'),
      fc
        .tuple(fc.constantFrom('+', '-'), part(0, 23), fc.constantFrom(':', ':', ''), part(0, 59))
        .map((p) => p.join('')),
    ),
    fc.constantFrom('', '', '', '', '', ' ', '\n', 'x'),
  )
  .map(([y, mo, d, t, h, mi, s, f, o, tail]) => `${y}-${mo}-${d}${t}${h}:${mi}:${s}${f}${o}${tail}`);

describe('checkTimestamp', () => {
  it('gives the same answer as the regular-expression rule, for near-valid and mangled timestamps', () => {
    const rules = new Map<string, number>();
    fc.assert(
      fc.property(fc.oneof(timestamp, timestamp, fc.string(), fc.string({ unit: 'binary' })), (text) => {
        const expected = reference(text);
        const rule = expected.ok ? 'ok' : expected.rule;
        rules.set(rule, (rules.get(rule) ?? 0) + 1);
        expect(checkTimestamp(text)).toEqual(expected);
      }),
      { numRuns: 20_000 },
    );
    // Every answer was exercised many times, valid timestamps included.
    for (const rule of ['ok', 'format', 'missing-offset', 'out-of-range']) {
      expect(rules.get(rule) ?? 0, rule).toBeGreaterThan(200);
    }
  });

  it('reads years 0000-0099 as such (not as 1900-1999, as Date.UTC would)', () => {
    expect(checkTimestamp('0050-06-01T00:00:00Z')).toEqual({
      ok: true,
      instant: { epochMs: Date.parse('0050-06-01T00:00:00Z'), nanos: 0 },
    });
    expect(checkTimestamp('0000-02-29T12:00:00.5+01:00')).toEqual({
      ok: true,
      instant: { epochMs: Date.parse('0000-02-29T11:00:00.500Z'), nanos: 0 },
    });
  });

  it('keeps all nine fraction digits and the offset', () => {
    expect(checkTimestamp('2026-11-22T10:00:00.123456789+01:30')).toEqual({
      ok: true,
      instant: { epochMs: Date.UTC(2026, 10, 22, 8, 30, 0, 123), nanos: 456789 },
    });
    expect(checkTimestamp('2016-12-31T23:59:60Z')).toEqual({
      ok: true,
      instant: { epochMs: Date.UTC(2017, 0, 1), nanos: 0 },
    });
  });
});

describe('isValidTimestamp', () => {
  it('accepts exactly what checkTimestamp accepts, for near-valid and mangled timestamps', () => {
    fc.assert(
      fc.property(fc.oneof(timestamp, timestamp, fc.string(), fc.string({ unit: 'binary' })), (text) => {
        expect(isValidTimestamp(text)).toBe(checkTimestamp(text).ok);
      }),
      { numRuns: 20_000 },
    );
  });
});
