/**
 * Credential redaction by parsing, not by one regular expression. Three forms are recognised in any
 * text (an error message, a stack, a fault description, a log field):
 *
 * - URL credentials: `scheme://user:password@host`. The password runs to the **last** `@` of the
 *   URL's line (before any further `scheme://`), as URL parsers read it, so a raw `@`, space, `/`
 *   or `#` in a password is masked whole: `amqp://guest:p@ss word@rabbit` → `amqp://guest:***@rabbit`.
 *   When the text after such an `@` was prose rather than a host, more is masked than needed,
 *   never less.
 * - Key/value credentials: a key ending in `password`, `passwd`, `pwd`, `secret`, `token`, `apikey`,
 *   `api_key`, `api-key` or `sig` (a SAS signature), followed by `=`: libpq's syntax (a value in
 *   single quotes with `\'` escapes, else up to the next whitespace); the Azure keys
 *   (`SharedAccessKey`, `SharedAccessSignature`, `AccountKey`) up to the next `;`, as Service Bus
 *   connection strings are split; quoted members (`"password": "..."` in JSON, `password: '...'`
 *   as `util.inspect` prints an object), also `connectionString` and `authorization`.
 * - HTTP credentials: `Bearer <token>`, and the value of an `Authorization` header.
 *
 * `known` adds exact secrets (from the configuration, see {@link secretsOf}): every occurrence, raw
 * or percent-encoded, is masked too, whatever text surrounds it. Pure; the same input gives the same
 * output. Masks are `***`.
 */
export function redactSecrets(text: string, known: readonly string[] = []): string {
  if (text.length === 0) return text;
  const spans = [...urlPasswordSpans(text), ...keyValueSpans(text), ...authorizationSpans(text)];
  for (const secret of variantsOf(known)) {
    for (let at = text.indexOf(secret); at !== -1; at = text.indexOf(secret, at + secret.length)) {
      spans.push({ start: at, end: at + secret.length });
    }
  }
  return mask(text, spans);
}

/**
 * A connection string for display (logs, error messages): the password or key replaced by `***`,
 * the rest kept so that an operator sees which host it was. Parses the URL form
 * (`amqp://user:password@host/vhost`) and the key/value forms (libpq, Service Bus).
 */
export function redactConnectionString(value: string): string {
  const scheme = SCHEME.exec(value);
  if (scheme?.index !== 0) return redactSecrets(value);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Unparseable: all of the authority up to the last `@` may be credentials.
    const at = value.lastIndexOf('@');
    return at > scheme[0].length ? `${scheme[0]}***${redactSecrets(value.slice(at))}` : redactSecrets(value);
  }
  if (url.password !== '') url.password = 'redacted';
  // The setter percent-encodes; the placeholder is swapped for the mask afterwards.
  return redactSecrets(url.href.replace(/^([^/]*\/\/[^/@]*:)redacted@/, '$1***@'));
}

/**
 * The exact secrets inside a connection string: the password of a URL (decoded, and as written),
 * the values of secret keys in key/value forms. For {@link redactSecrets}' `known`, so that a
 * client library that echoes a password without its URL around it is masked too.
 */
export function secretsOf(value: string): string[] {
  const found = new Set<string>();
  const scheme = SCHEME.exec(value);
  if (scheme?.index === 0) {
    try {
      const url = new URL(value);
      if (url.password !== '') {
        found.add(url.password);
        found.add(safeDecode(url.password));
      }
    } catch {
      // Not a URL the parser accepts: the spans below still find what the text shows.
    }
  }
  for (const { start, end } of [...urlPasswordSpans(value), ...keyValueSpans(value)]) {
    const secret = value.slice(start, end);
    found.add(secret);
    found.add(safeDecode(secret));
  }
  return [...found].filter((s) => s.length > 0);
}

interface Span {
  readonly start: number;
  readonly end: number;
}

// Every pattern starts at the beginning of a run of its characters (a lookbehind), and every scan
// resumes after the span it found: the work is linear in the text, so a long error message (a
// base64 body, a 100 KB stack) costs microseconds, not seconds.
const SCHEME = /(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const SCHEMES = new RegExp(SCHEME.source, 'g');
/** Shorter known secrets are not masked everywhere they occur (`"a"` would eat every `a`). */
const MIN_KNOWN_LENGTH = 4;
const MASK = '***';

/** `scheme://user:PASSWORD@host`: the password, up to the last `@` before the line (or next URL) ends. */
function urlPasswordSpans(text: string): Span[] {
  const spans: Span[] = [];
  const starts = [...text.matchAll(SCHEMES)].map((m) => ({ index: m.index, length: m[0].length }));
  const lines = new LineEnds(text);
  starts.forEach(({ index, length }, i) => {
    const from = index + length;
    let to = lines.after(from);
    const next = starts[i + 1];
    if (next && next.index < to) to = next.index;
    let at = to - 1;
    while (at >= from && text[at] !== '@') at--;
    if (at < from) return;
    const userinfo = text.slice(from, at);
    const colon = userinfo.indexOf(':');
    // A user name has no whitespace or path characters; otherwise this `@` is not the URL's.
    if (colon < 0 || /[\s/?#]/.test(userinfo.slice(0, colon))) return;
    if (colon + 1 < userinfo.length) spans.push({ start: from + colon + 1, end: at });
  });
  return spans;
}

/** An identifier (a whole run of key characters) and `=`. */
const KEY_ASSIGNMENT = /(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]+)[ \t]*=[ \t]*/g;
/** `"password": "..."` (JSON) and `password: '...'` (util.inspect, JavaScript): a quoted value. */
const QUOTED_MEMBER = /(?<![A-Za-z0-9_.-])["']?([A-Za-z0-9_.-]+)["']?[ \t]*:[ \t]*(["'])/g;
/** Service Bus splits its connection string at `;`: these keys' values may hold `=`, spaces, anything. */
const AZURE_KEYS = new Set(['sharedaccesskey', 'sharedaccesssignature', 'accountkey']);
const SECRET_SUFFIXES = ['password', 'passwd', 'pwd', 'secret', 'token', 'apikey', 'api_key', 'api-key'];
const QUOTED_SUFFIXES = [...SECRET_SUFFIXES, 'connectionstring', 'authorization', 'sharedaccesskey', 'accountkey'];

function keyValueSpans(text: string): Span[] {
  const spans: Span[] = [];
  const lines = new LineEnds(text);
  KEY_ASSIGNMENT.lastIndex = 0;
  for (let m = KEY_ASSIGNMENT.exec(text); m !== null; m = KEY_ASSIGNMENT.exec(text)) {
    const key = (m[1] as string).toLowerCase();
    const from = m.index + m[0].length;
    let end = from;
    if (AZURE_KEYS.has(key)) {
      const lineEnd = lines.after(from);
      while (end < lineEnd && text[end] !== ';') end++;
    } else if (key === 'sig' || SECRET_SUFFIXES.some((suffix) => key.endsWith(suffix))) {
      if (text[from] === "'") {
        // libpq: 'quoted value' with \' and \\ escapes.
        end = closingQuote(text, from + 1, "'");
        if (end > from + 1) spans.push({ start: from + 1, end });
        KEY_ASSIGNMENT.lastIndex = Math.max(KEY_ASSIGNMENT.lastIndex, end);
        continue;
      }
      while (end < text.length && !/\s/.test(text[end] as string)) end++;
    }
    if (end > from) spans.push({ start: from, end });
    KEY_ASSIGNMENT.lastIndex = Math.max(KEY_ASSIGNMENT.lastIndex, end);
  }
  QUOTED_MEMBER.lastIndex = 0;
  for (let m = QUOTED_MEMBER.exec(text); m !== null; m = QUOTED_MEMBER.exec(text)) {
    const key = (m[1] as string).toLowerCase();
    if (!QUOTED_SUFFIXES.some((suffix) => key.endsWith(suffix))) continue;
    const from = m.index + m[0].length;
    const close = closingQuote(text, from, m[2] as string);
    if (close > from) spans.push({ start: from, end: close });
    QUOTED_MEMBER.lastIndex = Math.max(QUOTED_MEMBER.lastIndex, close);
  }
  return spans;
}

const BEARER = /\bBearer[ \t]+(?=[A-Za-z0-9\-._~+/])/g;
const AUTHORIZATION = /(?<![A-Za-z0-9])authorization["']?[ \t]*[:=][ \t]*["']?(?:[A-Za-z]+[ \t]+)?/gi;

function authorizationSpans(text: string): Span[] {
  const spans: Span[] = [];
  for (const pattern of [BEARER, AUTHORIZATION]) {
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      const from = m.index + m[0].length;
      let end = from;
      while (end < text.length && !/[\s"',;}]/.test(text[end] as string)) end++;
      if (end > from) spans.push({ start: from, end });
      pattern.lastIndex = Math.max(pattern.lastIndex, end);
    }
  }
  return spans;
}

/** The end of the line holding a position, for positions asked in increasing order: one pass in all. */
class LineEnds {
  #end = -1;
  constructor(private readonly text: string) {}
  after(from: number): number {
    if (from <= this.#end) return this.#end;
    let i = from;
    while (i < this.text.length && this.text[i] !== '\n' && this.text[i] !== '\r') i++;
    this.#end = i;
    return i;
  }
}

function variantsOf(known: readonly string[]): string[] {
  const variants = new Set<string>();
  for (const secret of known) {
    if (secret.length < MIN_KNOWN_LENGTH) continue;
    variants.add(secret);
    variants.add(encodeURIComponent(secret));
    const url = new URL('http://host');
    url.password = secret;
    variants.add(url.password);
  }
  // Longest first, so that a secret containing another is masked whole.
  return [...variants].sort((a, b) => b.length - a.length);
}

function mask(text: string, spans: Span[]): string {
  if (spans.length === 0) return text;
  spans.sort((a, b) => a.start - b.start);
  let out = '';
  let cursor = 0;
  for (const { start, end } of spans) {
    if (end <= cursor) continue;
    if (start >= cursor) {
      out += text.slice(cursor, start) + MASK;
    }
    cursor = end;
  }
  return out + text.slice(cursor);
}

/**
 * Index of the quote closing a string that starts at `from` (backslash escapes). Unterminated (a
 * text cut short): the end of the line, so that the rest is masked rather than shown.
 */
function closingQuote(text: string, from: number, quote: string): number {
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === quote) return i;
    else if (c === '\n' || c === '\r') return i;
  }
  return text.length;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
