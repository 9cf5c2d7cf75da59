import { z } from 'zod';
import { endpointsOf } from '../health/health-view.js';
import { sendJson, switchOf } from '../health/http-answer.js';
import { HttpProblem } from '../health/http-problem.js';
import { readJsonBody } from '../health/read-json-body.js';
import { safeError } from '../telemetry/safe-error.js';
import type { AdminRoute } from './admin-route.js';
import { type AdminExchange, type AdminSource, dlqOf, parse } from './admin-request.js';

const TripBodySchema = z.strictObject({ reason: z.string().trim().min(1).max(500) });
const ResetBodySchema = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() });
/** How long the endpoint view waits for one dead-letter count. */
const COUNT_TIMEOUT_MS = 3_000;

/** The endpoints' routes: their views (with their dead-letter counts) and their kill switches. */
export async function answerEndpointRoute(
  { req, res, source, options, audit }: AdminExchange,
  route: Extract<AdminRoute, { kind: 'endpoints' | 'endpoint' | 'trip' | 'reset' }>,
): Promise<void> {
  switch (route.kind) {
    case 'endpoints': {
      const health = source.health();
      const views = endpointsOf(health, true);
      const endpoints = await Promise.all(
        [...views].map(async ([name, view]) => ({ name, ...view, deadLetters: await countOf(source, name) })),
      );
      // The outbox is the bus's (one per inbox database), not an endpoint's: depth and lag beside them.
      const outbox = health.outbox ? { outbox: health.outbox } : {};
      return sendJson(res, 200, { state: health.state, transport: health.transport, ...outbox, endpoints });
    }
    case 'endpoint': {
      const view = endpointsOf(source.health(), true).get(route.name);
      if (!view) throw new HttpProblem(404, 'not-found', `no running endpoint "${route.name}"`);
      return sendJson(res, 200, { name: route.name, ...view, deadLetters: await countOf(source, route.name) });
    }
    case 'trip':
    case 'reset': {
      const body = parse(
        route.kind === 'trip' ? TripBodySchema : ResetBodySchema,
        await readJsonBody(req, options.requestTimeoutMs),
      );
      const names = route.name !== undefined ? [route.name] : [...endpointsOf(source.health(), false).keys()];
      const switches = names.map((name) => switchOf(source, name));
      for (const ks of switches) {
        if (route.kind === 'trip') ks.trip(body.reason as string);
        else ks.reset(body.reason);
      }
      audit(req, { endpoints: names, reason: body.reason }, `kill switch ${route.kind} requested over the admin API`);
      return sendJson(res, 200, { endpoints: switches.map((ks) => ({ name: ks.endpoint, killSwitch: ks.view() })) });
    }
  }
}

/** The dead-letter count, or null with why when the broker did not answer in time. */
async function countOf(source: AdminSource, name: string): Promise<{ count: number | null; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const count = await Promise.race([
      dlqOf(source, name).count(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${COUNT_TIMEOUT_MS} ms`)), COUNT_TIMEOUT_MS);
      }),
    ]);
    return { count };
  } catch (error) {
    return { count: null, error: safeError(error).message };
  } finally {
    clearTimeout(timer);
  }
}
