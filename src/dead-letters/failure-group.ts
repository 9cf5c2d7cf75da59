import { createHash } from 'node:crypto';
import type { DeadLetteredMessage } from '../transport-core/dead-letter-queue.js';

/** The header a broker writes when it dead-lettered a message itself (Service Bus). */
const BROKER_REASON_HEADER = 'DeadLetterReason';
const BROKER_DESCRIPTION_HEADER = 'DeadLetterErrorDescription';

/** What a dead letter is grouped by: its reason, error type and normalised error text. */
export interface FailureGroupKey {
  /** A stable id (12 hex digits) for the group: the same failures get the same id on every read. */
  readonly id: string;
  readonly reason: string;
  /** The error's class name, or `''` for bad input (no error was thrown). */
  readonly errorType: string;
  /** The error message (else the fault description) with the parts that vary folded. */
  readonly text: string;
}

/** The dead-letter reason: Sluice's fault reason, else the broker's, else `unknown`. */
export function reasonOf(dead: DeadLetteredMessage): string {
  return dead.fault?.reason ?? dead.headers[BROKER_REASON_HEADER] ?? 'unknown';
}

/** The text a dead letter failed with: the error message, else the fault's or the broker's description. */
export function failureTextOf(dead: DeadLetteredMessage): string {
  return dead.fault?.errorMessage ?? dead.fault?.description ?? dead.headers[BROKER_DESCRIPTION_HEADER] ?? '';
}

/**
 * Folds what varies from one failure to the next into placeholders, so that ten thousand
 * `order 4711 not found` become one group `order <n> not found` (ServicePulse groups failures the
 * same way). Quoted values, UUIDs, timestamps, long hex ids and numbers standing alone are folded;
 * digits inside a word (`v1`, `utf8`) stay. Pure; bounded (the first 500 characters).
 */
export function normaliseFailureText(text: string): string {
  return text
    .slice(0, 500)
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/'(?:[^'\\]|\\.)*'/g, "'…'")
    .replace(/`[^`]*`/g, '`…`')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<uuid>')
    .replace(/\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?/g, '<time>')
    .replace(/\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b/gi, '<hex>')
    .replace(/(?<![A-Za-z0-9_<])[+-]?\d+(?:\.\d+)?(?![A-Za-z0-9_])/g, '<n>')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The group a dead letter belongs to. Pure. */
export function failureGroupOf(dead: DeadLetteredMessage): FailureGroupKey {
  const reason = reasonOf(dead);
  const errorType = dead.fault?.errorName ?? '';
  const text = normaliseFailureText(failureTextOf(dead));
  const id = createHash('sha256').update(`${reason}\n${errorType}\n${text}`).digest('hex').slice(0, 12);
  return { id, reason, errorType, text };
}
