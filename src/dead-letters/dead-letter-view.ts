import type { FaultDetails } from '../errors/fault.js';
import type { DeadLetteredMessage } from '../transport-core/dead-letter-queue.js';
import { failureGroupOf, failureTextOf, reasonOf } from './failure-group.js';

/** One dead letter in a list: what it is and why it failed, without its body. */
export interface DeadLetterSummary {
  readonly id: string;
  readonly messageId: string;
  readonly reason: string;
  readonly errorType?: string;
  readonly messageType?: string;
  /** The error message or description, cut to 300 characters. */
  readonly text: string;
  readonly failedAt?: string;
  readonly attempts?: number;
  readonly group: string;
  readonly size: number;
}

/** One dead letter whole: its fault, headers and body. */
export interface DeadLetterDetail extends DeadLetterSummary {
  readonly fault?: FaultDetails;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: {
    readonly size: number;
    /** `utf8` when the bytes are valid UTF-8 (`text` is the text), else `hex`. */
    readonly encoding: 'utf8' | 'hex';
    readonly text: string;
    readonly base64: string;
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function summaryOf(dead: DeadLetteredMessage): DeadLetterSummary {
  const text = failureTextOf(dead);
  return {
    id: dead.deadLetterId,
    messageId: dead.messageId,
    reason: reasonOf(dead),
    ...(dead.fault?.errorName !== undefined ? { errorType: dead.fault.errorName } : {}),
    ...(dead.fault?.messageType !== undefined ? { messageType: dead.fault.messageType } : {}),
    text: text.length > 300 ? `${text.slice(0, 299)}…` : text,
    ...(dead.fault?.lastFailureAt !== undefined ? { failedAt: dead.fault.lastFailureAt } : {}),
    ...(dead.fault?.attempts !== undefined ? { attempts: dead.fault.attempts } : {}),
    group: failureGroupOf(dead).id,
    size: dead.body.length,
  };
}

/**
 * The whole dead letter as JSON. The body is never interpreted: text when it is valid UTF-8, hex
 * otherwise, and base64 always (the bytes as they are).
 */
export function detailOf(dead: DeadLetteredMessage): DeadLetterDetail {
  let text: string | undefined;
  try {
    text = utf8.decode(dead.body);
  } catch {
    text = undefined;
  }
  return {
    ...summaryOf(dead),
    ...(dead.fault !== undefined ? { fault: dead.fault } : {}),
    headers: dead.headers,
    body: {
      size: dead.body.length,
      encoding: text === undefined ? 'hex' : 'utf8',
      text: text ?? dead.body.toString('hex'),
      base64: dead.body.toString('base64'),
    },
  };
}
