/**
 * The timestamp rule: an RFC 3339 date-time with an explicit offset (`Z` or `±hh:mm`).
 * A local-time timestamp (no offset) is ambiguous across producers and daylight-saving changes,
 * so it is rejected rather than guessed.
 */
//   ^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})?$
// (the offset optional in the pattern only so that its absence gets its own rule).

/** The result of {@link checkTimestamp}; failures are shared frozen objects. */
export type TimestampCheck =
  | { readonly ok: true; readonly instant: Instant }
  | { readonly ok: false; readonly rule: 'format' | 'missing-offset' | 'out-of-range' };

/** A point in time at full precision: epoch milliseconds plus the nanoseconds below them. */
export interface Instant {
  readonly epochMs: number;
  readonly nanos: number;
}

/** Checks and parses a timestamp; the failure says which rule it broke. */
export function checkTimestamp(text: string): TimestampCheck {
  return check(text, true) as TimestampCheck;
}

/**
 * Whether `text` follows the timestamp rule: the same checks as {@link checkTimestamp}, without
 * computing the instant (the decode stage's fast path needs only the answer, for every delivery).
 */
export function isValidTimestamp(text: string): boolean {
  return check(text, false).ok;
}

const VALID = Object.freeze({ ok: true as const });

function check(text: string, withInstant: boolean): TimestampCheck | typeof VALID {
  // Hand-parsed (every delivery runs this): equal to matching the pattern above, which a property
  // test checks against a regex implementation. -1 from `digits` means "not the format".
  const n = text.length;
  if (n < 19) return FORMAT;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  const t = text.charCodeAt(10);
  if (
    year < 0 ||
    month < 0 ||
    day < 0 ||
    hour < 0 ||
    minute < 0 ||
    second < 0 ||
    text.charCodeAt(4) !== DASH ||
    text.charCodeAt(7) !== DASH ||
    (t !== UPPER_T && t !== LOWER_T) ||
    text.charCodeAt(13) !== COLON ||
    text.charCodeAt(16) !== COLON
  ) {
    return FORMAT;
  }
  let i = 19;
  let millis = 0;
  let nanos = 0;
  if (i < n && text.charCodeAt(i) === DOT) {
    const from = ++i;
    while (i < n && i - from < 10 && isDigit(text.charCodeAt(i))) i++;
    const count = i - from;
    if (count === 0 || count > 9) return FORMAT;
    // Nine digits of fraction: the first three are milliseconds, the rest nanoseconds below them.
    for (let k = 0; k < 9; k++) {
      const d = k < count ? text.charCodeAt(from + k) - ZERO : 0;
      if (k < 3) millis = millis * 10 + d;
      else nanos = nanos * 10 + d;
    }
  }
  let offsetMinutes = 0;
  if (i === n) return MISSING_OFFSET;
  const o = text.charCodeAt(i);
  if (o === UPPER_Z || o === LOWER_Z) {
    if (i + 1 !== n) return FORMAT;
  } else if (o === PLUS || o === DASH) {
    if (i + 6 !== n || text.charCodeAt(i + 3) !== COLON) return FORMAT;
    const oh = digits(text, i + 1, 2);
    const om = digits(text, i + 4, 2);
    if (oh < 0 || om < 0) return FORMAT;
    if (oh > 23 || om > 59) return OUT_OF_RANGE;
    offsetMinutes = (o === DASH ? -1 : 1) * (oh * 60 + om);
  } else return FORMAT;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return OUT_OF_RANGE;
  if (hour > 23 || minute > 59 || second > 60) return OUT_OF_RANGE;
  if (!withInstant) return VALID;
  // A leap second (:60) is folded onto the next second, as Date does.
  const epochMs =
    utc(year, month, day, hour, minute, Math.min(second, 59), millis) +
    (second === 60 ? 1000 : 0) -
    offsetMinutes * 60_000;
  return { ok: true, instant: { epochMs, nanos } };
}

const FORMAT: TimestampCheck = Object.freeze({ ok: false, rule: 'format' });
const MISSING_OFFSET: TimestampCheck = Object.freeze({ ok: false, rule: 'missing-offset' });
const OUT_OF_RANGE: TimestampCheck = Object.freeze({ ok: false, rule: 'out-of-range' });
const ZERO = 48;
const DASH = 45;
const PLUS = 43;
const COLON = 58;
const DOT = 46;
const UPPER_T = 84;
const LOWER_T = 116;
const UPPER_Z = 90;
const LOWER_Z = 122;

/**
 * Epoch ms of a UTC date-time. `Date.UTC` reads years 0–99 as 1900–1999; those (valid RFC 3339
 * years) get their own year set explicitly.
 */
function utc(year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number) {
  if (year >= 100) return Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const date = new Date(Date.UTC(2000, 0, 1, hour, minute, second, ms));
  date.setUTCFullYear(year, month - 1, day);
  return date.getTime();
}

const isDigit = (c: number) => c >= ZERO && c <= ZERO + 9;

/** The number written by `count` ASCII digits at `from`, or -1 when one of them is not a digit. */
function digits(text: string, from: number, count: number): number {
  let value = 0;
  for (let k = 0; k < count; k++) {
    const c = text.charCodeAt(from + k);
    if (!isDigit(c)) return -1;
    value = value * 10 + (c - ZERO);
  }
  return value;
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
