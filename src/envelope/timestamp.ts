/**
 * The timestamp rule: an RFC 3339 date-time with an explicit offset (`Z` or `±hh:mm`).
 * A local-time timestamp (no offset) is ambiguous across producers and daylight-saving changes,
 * so it is rejected rather than guessed.
 */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})?$/;

export type TimestampCheck =
  | { ok: true; instant: Instant }
  | { ok: false; rule: 'format' | 'missing-offset' | 'out-of-range' };

/** A point in time at full precision: epoch milliseconds plus the nanoseconds below them. */
export interface Instant {
  readonly epochMs: number;
  readonly nanos: number;
}

/** Checks and parses a timestamp; the failure says which rule it broke. */
export function checkTimestamp(text: string): TimestampCheck {
  const m = RFC3339.exec(text);
  if (!m) return { ok: false, rule: 'format' };
  const [, y, mo, d, h, mi, s, frac, offset] = m;
  if (offset === undefined) return { ok: false, rule: 'missing-offset' };
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return { ok: false, rule: 'out-of-range' };
  if (hour > 23 || minute > 59 || second > 60) return { ok: false, rule: 'out-of-range' };
  let offsetMinutes = 0;
  if (offset !== 'Z' && offset !== 'z') {
    const sign = offset.startsWith('-') ? -1 : 1;
    const oh = Number(offset.slice(1, 3));
    const om = Number(offset.slice(4, 6));
    if (oh > 23 || om > 59) return { ok: false, rule: 'out-of-range' };
    offsetMinutes = sign * (oh * 60 + om);
  }
  const fraction = (frac ?? '').padEnd(9, '0');
  const millis = Number(fraction.slice(0, 3));
  const nanos = Number(fraction.slice(3));
  // A leap second (:60) is folded onto the next second, as Date does.
  const epochMs =
    Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59), millis) +
    (second === 60 ? 1000 : 0) -
    offsetMinutes * 60_000;
  return { ok: true, instant: { epochMs, nanos } };
}

/** Negative when `a` is earlier than `b`, zero when they are the same instant, positive after. */
export function compareInstants(a: Instant, b: Instant): number {
  return a.epochMs - b.epochMs || a.nanos - b.nanos;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  if (month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) return 29;
  return DAYS[month - 1] as number;
}
