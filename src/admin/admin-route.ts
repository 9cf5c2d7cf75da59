import { EndpointNameSchema } from '../health/health-route.js';
import { z } from 'zod';
import { HttpProblem } from '../health/http-problem.js';

/** A request the admin API answers (under `{basePath}/admin/v1`). */
export type AdminRoute =
  | { readonly kind: 'endpoints' }
  | { readonly kind: 'endpoint'; readonly name: string }
  | { readonly kind: 'trip' | 'reset'; readonly name?: string }
  | { readonly kind: 'dead-letters' | 'dead-letter-stats'; readonly name: string }
  | { readonly kind: 'dead-letter'; readonly name: string; readonly id: string }
  | { readonly kind: 'redrive' | 'purge'; readonly name: string }
  | { readonly kind: 'explain-key'; readonly key: string }
  | { readonly kind: 'explain-message'; readonly id: string }
  | { readonly kind: 'jobs' }
  | { readonly kind: 'job' | 'job-events' | 'job-cancel'; readonly id: string };

/** The method each route answers; everything else is 405. */
export function methodOf(route: AdminRoute): 'GET' | 'POST' {
  switch (route.kind) {
    case 'trip':
    case 'reset':
    case 'redrive':
    case 'purge':
    case 'job-cancel':
      return 'POST';
    default:
      return 'GET';
  }
}

const EndpointName = EndpointNameSchema;
const JobId = z.uuid();
const DeadLetterId = z.string().min(1).max(1_000);
// CloudEvents `subject` and `id` as the codec takes them.
const EntityKey = z.string().min(1).max(1_024);
const MessageId = z.string().min(1).max(1_000);

/**
 * The admin route of a path below `{basePath}/admin/v1` (given as its segments, percent-decoded),
 * or undefined when there is none. Segments are compared with literals; names and ids are checked
 * here (400) and looked up by the handler in maps, never on objects.
 */
export function matchAdminRoute(segments: readonly string[]): AdminRoute | undefined {
  const [first, second, third, fourth, fifth, ...extra] = segments;
  if (extra.length > 0) return undefined;
  if (first === 'kill-switch' && fourth === undefined && third === undefined) {
    if (second === 'trip' || second === 'reset') return { kind: second };
    return undefined;
  }
  if (first === 'explain') {
    if (third === undefined || fourth !== undefined) return undefined;
    if (second === 'keys') return { kind: 'explain-key', key: check(EntityKey, third, 'key') };
    if (second === 'messages') return { kind: 'explain-message', id: check(MessageId, third, 'message id') };
    return undefined;
  }
  if (first === 'jobs') {
    if (second === undefined) return { kind: 'jobs' };
    const id = check(JobId, second, 'job id');
    if (third === undefined) return { kind: 'job', id };
    if (fourth !== undefined) return undefined;
    if (third === 'events') return { kind: 'job-events', id };
    if (third === 'cancel') return { kind: 'job-cancel', id };
    return undefined;
  }
  if (first !== 'endpoints') return undefined;
  if (second === undefined) return { kind: 'endpoints' };
  const name = check(EndpointName, second, 'endpoint name');
  if (third === undefined) return { kind: 'endpoint', name };
  if (third === 'kill-switch') {
    if (fifth === undefined && (fourth === 'trip' || fourth === 'reset')) return { kind: fourth, name };
    return undefined;
  }
  if (third !== 'dead-letters') return undefined;
  if (fourth === undefined) return { kind: 'dead-letters', name };
  if (fifth === undefined) {
    if (fourth === 'stats') return { kind: 'dead-letter-stats', name };
    if (fourth === 'redrive' || fourth === 'purge') return { kind: fourth, name };
    return undefined;
  }
  if (fourth === 'messages') return { kind: 'dead-letter', name, id: check(DeadLetterId, fifth, 'dead-letter id') };
  return undefined;
}

function check<T>(schema: z.ZodType<T>, value: string, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new HttpProblem(400, 'invalid-request', `the ${what} is invalid`, [
      `${what}: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    ]);
  }
  return parsed.data;
}
