import { z } from 'zod';
import { DeadLetterFilterSchema } from '../dead-letters/dead-letter-filter.js';
import { decodeCursor, deadLetterStats, findDeadLetter, listDeadLetters } from '../dead-letters/dead-letter-reads.js';
import { detailOf } from '../dead-letters/dead-letter-view.js';
import { sendJson } from '../health/http-answer.js';
import { HttpProblem } from '../health/http-problem.js';
import { readJsonBody } from '../health/read-json-body.js';
import type { AdminRoute } from './admin-route.js';
import { type AdminExchange, dlqOf, parse, queryOf } from './admin-request.js';
import { deadLetterWork, PurgeRequestSchema, RedriveRequestSchema } from './dead-letter-job.js';
import { JobConflict, type JobView } from './job-registry.js';

const ListQuerySchema = DeadLetterFilterSchema.extend({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

/** An endpoint's dead letters: a filtered page, counts by reason and group, one of them, and redrive or purge jobs. */
export async function answerDeadLetterRoute(
  { req, res, source, options, apiPrefix, audit }: AdminExchange,
  route: Extract<AdminRoute, { kind: 'dead-letters' | 'dead-letter-stats' | 'dead-letter' | 'redrive' | 'purge' }>,
): Promise<void> {
  const { jobs } = options;
  const limits = { scanLimit: options.scanLimit };
  switch (route.kind) {
    case 'dead-letters': {
      const query = parse(ListQuerySchema, queryOf(req));
      const { cursor, limit, ...filter } = query;
      const position = cursor === undefined ? 0 : decodeCursor(cursor);
      if (position === undefined)
        throw new HttpProblem(400, 'invalid-request', 'the cursor is invalid', ['cursor: not a cursor of this API']);
      const page = await listDeadLetters(dlqOf(source, route.name), filter, { position, limit }, limits);
      return sendJson(res, 200, { endpoint: route.name, ...page });
    }
    case 'dead-letter-stats': {
      const filter = parse(DeadLetterFilterSchema, queryOf(req));
      const stats = await deadLetterStats(dlqOf(source, route.name), filter, limits);
      return sendJson(res, 200, { endpoint: route.name, ...stats });
    }
    case 'dead-letter': {
      const dead = await findDeadLetter(dlqOf(source, route.name), route.id, limits);
      if (!dead) throw new HttpProblem(404, 'not-found', `no dead letter "${route.id}" on endpoint "${route.name}"`);
      return sendJson(res, 200, { endpoint: route.name, ...detailOf(dead) });
    }
    case 'redrive':
    case 'purge': {
      const raw = await readJsonBody(req, options.requestTimeoutMs);
      const request = route.kind === 'redrive' ? parse(RedriveRequestSchema, raw) : parse(PurgeRequestSchema, raw);
      const expect = 'expect' in request ? request.expect : undefined;
      if ('ids' in request.selection && expect !== undefined && expect !== new Set(request.selection.ids).size) {
        throw new HttpProblem(400, 'invalid-request', 'expect must be the number of ids', [
          'expect: not the number of distinct ids',
        ]);
      }
      const dlq = dlqOf(source, route.name);
      const reason = request.reason ?? 'purged over the admin API';
      let job: JobView;
      try {
        job = jobs.start(
          { kind: route.kind, endpoint: route.name, selection: describe(request.selection), reason },
          deadLetterWork(dlq, {
            kind: route.kind,
            selection: request.selection,
            reason,
            scanLimit: options.scanLimit,
            ...(expect !== undefined ? { expect } : {}),
          }),
        );
      } catch (error) {
        if (error instanceof JobConflict) {
          throw new HttpProblem(409, 'conflict', error.message);
        }
        throw error;
      }
      audit(
        req,
        { endpoint: route.name, job: job.id, selection: job.selection, reason, expect },
        `dead-letter ${route.kind} started over the admin API`,
      );
      const location = `${apiPrefix}/jobs/${job.id}`;
      res.setHeader('location', location);
      return sendJson(res, 202, { job, location });
    }
  }
}

/** A selection as a job shows it: ids are counted, not listed. */
function describe(selection: z.infer<typeof RedriveRequestSchema>['selection']): unknown {
  if ('ids' in selection) return { ids: selection.ids.length };
  return selection;
}
