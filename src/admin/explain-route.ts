import { EndpointNameSchema } from '../health/health-route.js';
import { z } from 'zod';
import { DependencyError, RegistrationError } from '../errors/sluice-error.js';
import { DEFAULT_EXPLAIN_LIMIT, MAX_EXPLAIN_LIMIT } from '../history/explain.js';
import { HttpProblem } from '../health/http-problem.js';
import { sendJson } from '../health/http-answer.js';
import type { ExplainOptions } from '../history/explain.js';
import type { AdminRoute } from './admin-route.js';
import { type AdminExchange, parse, queryOf } from './admin-request.js';

/** `GET {basePath}/admin/v1/explain/keys/{key}?endpoint=&limit=&since=`. */
export const ExplainQuerySchema = z.strictObject({
  endpoint: EndpointNameSchema.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_EXPLAIN_LIMIT).default(DEFAULT_EXPLAIN_LIMIT),
  /** RFC 3339 with an offset: only entries recorded at or after it. */
  since: z.iso
    .datetime({ offset: true })
    .transform((s) => new Date(s))
    .optional(),
});

/**
 * Runs an explain read for the admin API: an endpoint that is not declared answers 404, an inbox
 * database that cannot be reached 503 (the reason without its text: it may name a host).
 */
export async function explainAnswer<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof RegistrationError) throw new HttpProblem(404, 'not-found', error.message);
    if (error instanceof DependencyError) {
      throw new HttpProblem(503, 'unavailable', "the inbox's database did not answer; try again");
    }
    throw error;
  }
}

/** The explain routes: a key's timeline, and where one message went. */
export async function answerExplainRoute(
  { req, res, source }: AdminExchange,
  route: Extract<AdminRoute, { kind: 'explain-key' | 'explain-message' }>,
): Promise<void> {
  switch (route.kind) {
    case 'explain-key': {
      const { endpoint, limit, since } = parse(ExplainQuerySchema, queryOf(req));
      const options: ExplainOptions = { limit, ...(endpoint ? { endpoint } : {}), ...(since ? { since } : {}) };
      return sendJson(res, 200, await explainAnswer(() => source.explain(route.key, options)));
    }
    case 'explain-message':
      return sendJson(res, 200, await explainAnswer(() => source.explainMessage(route.id)));
  }
}
