import { hostname } from 'node:os';
import { redactSecrets } from '../internal/redact.js';

/**
 * Why a message was dead-lettered. Bad-input reasons are decided before the handler runs and are
 * never retried; the others come from the handler.
 */
export const DeadLetterReasons = [
  'undecodable',
  'invalid-envelope',
  'local-time-timestamp',
  'schema-violation',
  'unknown-message-type',
  'oversized',
  'permanent-failure',
  'retries-exhausted',
  'handler-dead-lettered',
  'stale',
  'tombstoned',
  'future-timestamp',
] as const;
export type DeadLetterReason = (typeof DeadLetterReasons)[number];

/** Reasons that mean the producer sent something wrong (as opposed to our handler failing). */
export const BadInputReasons: ReadonlySet<DeadLetterReason> = new Set([
  'undecodable',
  'invalid-envelope',
  'local-time-timestamp',
  'schema-violation',
  'unknown-message-type',
  'oversized',
  'future-timestamp',
]);

/**
 * The fault record kept next to a dead-lettered message. One format for every transport: each
 * field becomes a `sluice-fault-*` header (see {@link faultToHeaders}).
 */
export interface FaultDetails {
  reason: DeadLetterReason;
  /** Precise, human-readable: names the field and rule, or the error. */
  description: string;
  errorName?: string;
  errorMessage?: string;
  /** Truncated to {@link MAX_STACK_CHARS}. */
  stack?: string;
  attempts: number;
  endpoint: string;
  host: string;
  firstFailureAt: string;
  lastFailureAt: string;
  originalAddress: string;
  messageId?: string;
  messageType?: string;
}

export const MAX_STACK_CHARS = 4000;

export const FaultHeader = {
  reason: 'sluice-fault-reason',
  description: 'sluice-fault-description',
  errorName: 'sluice-fault-error-name',
  errorMessage: 'sluice-fault-error-message',
  stack: 'sluice-fault-stack',
  attempts: 'sluice-fault-attempts',
  endpoint: 'sluice-fault-endpoint',
  host: 'sluice-fault-host',
  firstFailureAt: 'sluice-fault-first-failure-at',
  lastFailureAt: 'sluice-fault-last-failure-at',
  originalAddress: 'sluice-fault-original-address',
  messageId: 'sluice-fault-message-id',
  messageType: 'sluice-fault-message-type',
} as const satisfies Record<keyof FaultDetails, string>;

const HOST = hostname();

/** Builds a fault record; the error, if any, contributes its name, message and (truncated) stack. */
export function createFault(input: {
  reason: DeadLetterReason;
  description: string;
  error?: unknown;
  attempts: number;
  endpoint: string;
  originalAddress: string;
  firstFailureAt?: Date;
  now: Date;
  messageId?: string;
  messageType?: string;
}): FaultDetails {
  const fault: FaultDetails = {
    reason: input.reason,
    description: truncate(redactSecrets(input.description), 2000),
    attempts: input.attempts,
    endpoint: input.endpoint,
    host: HOST,
    firstFailureAt: (input.firstFailureAt ?? input.now).toISOString(),
    lastFailureAt: input.now.toISOString(),
    originalAddress: input.originalAddress,
  };
  if (input.messageId !== undefined) fault.messageId = input.messageId;
  if (input.messageType !== undefined) fault.messageType = input.messageType;
  if (input.error !== undefined) {
    const e = input.error instanceof Error ? input.error : undefined;
    fault.errorName = e?.name ?? typeof input.error;
    fault.errorMessage = truncate(redactSecrets(e?.message ?? String(input.error)), 2000);
    if (e?.stack) fault.stack = truncate(redactSecrets(e.stack), MAX_STACK_CHARS);
  }
  return fault;
}

/** The fault as flat string headers, the shape every transport stores next to the body. */
export function faultToHeaders(fault: FaultDetails): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const key of Object.keys(FaultHeader) as (keyof FaultDetails)[]) {
    const value = fault[key];
    if (value !== undefined) headers[FaultHeader[key]] = String(value);
  }
  return headers;
}

/** Reads a fault back from headers; undefined when the headers carry none. */
export function faultFromHeaders(headers: Readonly<Record<string, string>>): FaultDetails | undefined {
  const reason = headers[FaultHeader.reason];
  if (reason === undefined) return undefined;
  const fault: Record<string, string | number> = {};
  for (const key of Object.keys(FaultHeader) as (keyof FaultDetails)[]) {
    const value = headers[FaultHeader[key]];
    if (value !== undefined) fault[key] = key === 'attempts' ? Number(value) : value;
  }
  return fault as unknown as FaultDetails;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
