import { sendJson } from '../health/http-answer.js';
import { HttpProblem } from '../health/http-problem.js';
import type { AdminRoute } from './admin-route.js';
import type { AdminExchange } from './admin-request.js';
import { followJob } from './follow-job.js';

/** The jobs' routes: the list, one job, its events (Server-Sent Events), and its cancel. */
export async function answerJobRoute(
  { req, res, options, audit }: AdminExchange,
  route: Extract<AdminRoute, { kind: 'jobs' | 'job' | 'job-events' | 'job-cancel' }>,
): Promise<void> {
  const { jobs } = options;
  switch (route.kind) {
    case 'jobs':
      return sendJson(res, 200, { jobs: jobs.list() });
    case 'job': {
      const job = jobs.get(route.id);
      if (!job)
        throw new HttpProblem(404, 'not-found', `no job "${route.id}" (finished jobs are kept for a while only)`);
      return sendJson(res, 200, { job });
    }
    case 'job-events': {
      if (!jobs.get(route.id)) throw new HttpProblem(404, 'not-found', `no job "${route.id}"`);
      return followJob(req, res, jobs, route.id);
    }
    case 'job-cancel': {
      const job = jobs.cancel(route.id);
      if (!job) throw new HttpProblem(404, 'not-found', `no job "${route.id}"`);
      audit(req, { job: route.id, endpoint: job.endpoint }, 'job cancel requested over the admin API');
      return sendJson(res, 202, { job });
    }
  }
}
