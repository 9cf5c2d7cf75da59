import { redactSecrets } from '../internal/redact.js';

/**
 * An error as Sluice logs it: the fields of pino's `err` serializer that say what failed, and no
 * others. Texts are redacted ({@link redactSecrets}) and bounded.
 */
export interface LoggedError {
  /** The class name (`TransportError`), or `typeof` for a thrown non-error. */
  readonly type: string;
  readonly message: string;
  readonly stack?: string;
  /** `code` when it is a string or number (`ECONNREFUSED`, `23505`, `SLUICE_TRANSPORT`). */
  readonly code?: string | number;
  /** Sluice errors say whether a retry may succeed. */
  readonly retryable?: boolean;
  readonly cause?: LoggedError;
  /** An `AggregateError`'s first errors. */
  readonly errors?: readonly LoggedError[];
}

/** Causes (and aggregated errors) followed at most this deep: a cycle or a long chain stays bounded. */
const MAX_DEPTH = 3;
const MAX_AGGREGATED = 5;
const MAX_MESSAGE = 4_000;
const MAX_STACK = 16_000;
const MAX_CODE = 100;

/** The objects {@link safeError} made: serializing one again returns it as it is. */
const made = new WeakSet<object>();

/**
 * An error as a log field, keeping only type, message, stack, `code`, `retryable`, and the same for
 * its `cause` (and an `AggregateError`'s `errors`), at most {@link MAX_DEPTH} deep. Message and
 * stack are redacted by parsing; `known` adds exact secrets (see `secretsOf`).
 *
 * Why only these fields: any other property is content Sluice cannot know. Node's `ERR_INVALID_URL`
 * carries the URL in `input`, HTTP clients carry their request config with its `Authorization`
 * header, drivers carry connection parameters or a row's values. A redactor only finds the
 * secrets it recognises; a field that is not printed cannot leak. Never throws.
 */
export function safeError(error: unknown, known: readonly string[] = []): LoggedError {
  if (typeof error === 'object' && error !== null && made.has(error)) return error as LoggedError;
  return toLogged(error, known, 0);
}

/**
 * A pino serializer for the `err` and `error` fields: errors become {@link safeError}s, strings are
 * redacted, what {@link safeError} already made passes as it is.
 */
export function errorSerializer(value: unknown): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  return safeError(value);
}

function toLogged(error: unknown, known: readonly string[], depth: number): LoggedError {
  const text = (value: string, max: number) => bounded(redactSecrets(value, known), max);
  let logged: LoggedError;
  try {
    if (!(error instanceof Error)) {
      const message = typeof error === 'object' && error !== null ? messageOf(error) : String(error);
      logged = { type: error === null ? 'null' : typeof error, message: text(message, MAX_MESSAGE) };
    } else {
      const fields = error as Error & { code?: unknown; retryable?: unknown; errors?: unknown };
      const code = fields.code;
      const nested = depth + 1 < MAX_DEPTH;
      logged = {
        type: typeof error.name === 'string' ? bounded(error.name, MAX_CODE) : 'Error',
        message: text(String(error.message), MAX_MESSAGE),
        ...(typeof error.stack === 'string' ? { stack: text(error.stack, MAX_STACK) } : {}),
        ...(typeof code === 'string' ? { code: text(code, MAX_CODE) } : typeof code === 'number' ? { code } : {}),
        ...(typeof fields.retryable === 'boolean' ? { retryable: fields.retryable } : {}),
        ...(nested && error.cause !== undefined ? { cause: toLogged(error.cause, known, depth + 1) } : {}),
        ...(nested && Array.isArray(fields.errors)
          ? { errors: fields.errors.slice(0, MAX_AGGREGATED).map((e: unknown) => toLogged(e, known, depth + 1)) }
          : {}),
      };
    }
  } catch {
    // A getter that throws, a revoked proxy: say so rather than fail the log call.
    logged = { type: 'unknown', message: 'the error could not be read' };
  }
  made.add(logged);
  return logged;
}

/** A thrown non-error object: its `message` when it has one as a string, else its tag. */
function messageOf(value: object): string {
  const message = (value as { message?: unknown }).message;
  return typeof message === 'string' ? message : Object.prototype.toString.call(value);
}

function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}
