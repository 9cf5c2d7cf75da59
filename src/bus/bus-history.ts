import type { ExplainSources } from '../history/explain.js';
import { RegistrationError } from '../errors/sluice-error.js';
import { safeError } from '../telemetry/safe-error.js';
import type { DeadLetterQueue } from '../transport-core/dead-letter-queue.js';
import type { BusParts } from './bus-parts.js';
import type { EndpointRegistration } from './endpoint-builder.js';

/** Whether an endpoint keeps the history of its keys: its `history`, else `history.enabled`; with an inbox only. */
export function keepsHistory(parts: BusParts, registration: EndpointRegistration): boolean {
  if (!registration.config.inbox || !parts.inbox || !parts.history) return false;
  return registration.config.history ?? parts.config.history.enabled;
}

/** Whether any endpoint of the bus keeps history (then its table exists). */
export function anyHistory(parts: BusParts): boolean {
  return [...parts.registrations.values()].some((r) => keepsHistory(parts, r));
}

/** What `bus.explain` reads, for every endpoint or the one named (which must be declared). */
export function explainSources(
  parts: BusParts,
  endpoint: string | undefined,
  deadLetters: (endpoint: string) => DeadLetterQueue,
): ExplainSources {
  if (endpoint !== undefined && !parts.registrations.has(endpoint)) {
    throw new RegistrationError(`no endpoint "${endpoint}" is declared`);
  }
  const registrations = [...parts.registrations.values()].filter((r) => endpoint === undefined || r.name === endpoint);
  return {
    history: parts.history,
    endpoints: registrations.map((r) => ({ name: r.name, history: keepsHistory(parts, r) })),
    deadLetters,
    codec: parts.codec,
    scanLimit: parts.config.history.deadLetterScanLimit,
    describeError: (error) => safeError(error).message,
  };
}
