import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import { DeadLetterFilterSchema } from '../dead-letters/dead-letter-filter.js';
import { decodeCursor, deadLetterStats, findDeadLetter, listDeadLetters } from '../dead-letters/dead-letter-reads.js';
import { detailOf } from '../dead-letters/dead-letter-view.js';
import { RegistrationError } from '../errors/sluice-error.js';
import type { HealthSource } from '../health/health-handler.js';
import { pathOf } from '../health/health-route.js';
import { endpointsOf } from '../health/health-view.js';
import { answerFailure, sendJson, switchOf } from '../health/http-answer.js';
import { HttpProblem } from '../health/http-problem.js';
import { readJsonBody } from '../health/read-json-body.js';
import type { TokenAuthorizer } from '../health/token-authorizer.js';
import { safeError } from '../telemetry/safe-error.js';
import type { DeadLetterQueue } from '../transport/dead-letter-queue.js';
import { type AdminRoute, matchAdminRoute, methodOf } from './admin-route.js';
import { type ConsoleAssets, consoleAsset } from './console-assets.js';
import { deadLetterWork, PurgeRequestSchema, RedriveRequestSchema } from './dead-letter-job.js';
import { followJob } from './follow-job.js';
import { explainAnswer, ExplainQuerySchema } from './explain-route.js';
import type { ExplainOptions, Explanation, MessageExplanation } from '../history/explain.js';
import { JobConflict, type JobRegistry, type JobView } from './job-registry.js';

/** What the admin API needs from a bus (a `Bus` is one). */
export interface AdminSource extends HealthSource {
  /** Throws `RegistrationError` for an endpoint that is not declared. */
  deadLetters(endpoint: string): DeadLetterQueue;
  /** A key's timeline (docs/explain.md); rejects with `RegistrationError` for an endpoint that is not declared. */
  explain(key: string, options: ExplainOptions): Promise<Explanation>;
  /** Where one message went. */
  explainMessage(messageId: string): Promise<MessageExplanation>;
}

export interface AdminHandlerOptions {
  /** The same authorizer as the health routes: one token model for the whole server. */
  readonly authorizer: TokenAuthorizer;
  /** Where jobs run; owned by the caller, which closes it. */
  readonly jobs: JobRegistry;
  /** Default `/health`: the API is under `{basePath}/admin/v1`, the web view under `{basePath}/console/`. */
  readonly basePath: string;
  /** Dead letters a list, a count by group or a selection looks at, at most. */
  readonly scanLimit: number;
  readonly requestTimeoutMs: number;
  /** The web view's files; without them `{basePath}/console/` is not served. */
  readonly assets?: ConsoleAssets;
  readonly logger?: Logger;
}

const ListQuerySchema = DeadLetterFilterSchema.extend({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
const TripBodySchema = z.strictObject({ reason: z.string().trim().min(1).max(500) });
const ResetBodySchema = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() });
/** How long the endpoint view waits for one dead-letter count. */
const COUNT_TIMEOUT_MS = 3_000;

/**
 * The admin API (JSON, versioned: `{basePath}/admin/v1/...`) and the web view's files
 * (`{basePath}/console/`). Returns a request listener that answers its own paths and hands every
 * other one to `next` (the health routes).
 *
 * Access, with the health server's authorizer: reads need the read or the admin token (`401`
 * without one, `403` for a wrong one); actions (trip, reset, redrive, purge, cancel) need the admin
 * token (`404` when none is configured, `403` for the read token). The caller decides that the API
 * is on (a token is configured). Long operations are jobs (see {@link JobRegistry}): `202` with the
 * job and its location. Never throws: a failure answers 500 without its text.
 */
export function createAdminHandler(
  source: AdminSource,
  options: AdminHandlerOptions,
): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  const { authorizer, jobs, basePath, logger: log } = options;
  const apiPrefix = `${basePath}/admin/v1`;
  const consolePrefix = `${basePath}/console`;

  const refuse = (req: IncomingMessage, status: 401 | 403, what: string, why: string) => {
    log?.warn(
      { route: `${req.method} ${pathOf(req.url)}`, status, remoteAddress: req.socket.remoteAddress },
      `admin ${what} refused: ${why}`,
    );
    return new HttpProblem(status, status === 401 ? 'unauthorized' : 'forbidden', why);
  };
  const mayRead = (req: IncomingMessage) => {
    const { access, presented } = authorizer.check(req.headers.authorization);
    if (access !== 'none') return;
    throw presented
      ? refuse(req, 403, 'read', 'the token is wrong')
      : refuse(req, 401, 'read', 'a bearer token is required');
  };
  const mayAct = (req: IncomingMessage, action: string) => {
    if (!authorizer.hasAdminToken)
      throw new HttpProblem(404, 'not-found', `${action} is off: no admin token is configured`);
    const { access, presented } = authorizer.check(req.headers.authorization);
    if (!presented) throw refuse(req, 401, action, 'a bearer token is required');
    if (access === 'read') throw refuse(req, 403, action, `the read token does not allow ${action}`);
    if (access !== 'admin') throw refuse(req, 403, action, 'the token is wrong');
  };
  const audit = (req: IncomingMessage, fields: Record<string, unknown>, message: string) =>
    log?.info(
      { route: `${req.method} ${pathOf(req.url)}`, remoteAddress: req.socket.remoteAddress, ...fields },
      message,
    );

  const handle = async (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    const path = pathOf(req.url);
    if (path === consolePrefix || path.startsWith(`${consolePrefix}/`)) {
      if (!options.assets) return next();
      return serveAsset(req, res, options.assets, path.slice(consolePrefix.length), consolePrefix);
    }
    if (path !== apiPrefix && !path.startsWith(`${apiPrefix}/`)) return next();
    const route = matchAdminRoute(segmentsOf(path.slice(apiPrefix.length)));
    if (route === undefined) throw new HttpProblem(404, 'not-found', 'no such route');
    const method = req.method ?? 'GET';
    const allowed = methodOf(route) === 'GET' ? ['GET', 'HEAD'] : ['POST'];
    if (!allowed.includes(method)) {
      res.setHeader('allow', allowed.join(', '));
      throw new HttpProblem(405, 'method-not-allowed', `use ${allowed.join(' or ')}`);
    }
    if (methodOf(route) === 'GET') mayRead(req);
    else mayAct(req, route.kind);
    return answer(req, res, route);
  };

  const answer = async (req: IncomingMessage, res: ServerResponse, route: AdminRoute): Promise<void> => {
    const limits = { scanLimit: options.scanLimit };
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
      case 'explain-key': {
        const { endpoint, limit, since } = parse(ExplainQuerySchema, queryOf(req));
        const options: ExplainOptions = { limit, ...(endpoint ? { endpoint } : {}), ...(since ? { since } : {}) };
        return sendJson(res, 200, await explainAnswer(() => source.explain(route.key, options)));
      }
      case 'explain-message':
        return sendJson(res, 200, await explainAnswer(() => source.explainMessage(route.id)));
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
  };

  return (req, res, next) => {
    handle(req, res, next).catch((error: unknown) =>
      answerFailure(req, res, error, {
        realm: 'sluice-admin',
        log,
        what: 'admin request failed',
        message: 'the admin request failed; see the service log',
      }),
    );
  };
}

/** The query's parameters (the last of a repeated one). */
function queryOf(req: IncomingMessage): Record<string, string> {
  return Object.fromEntries(new URL(req.url ?? '/', 'http://localhost').searchParams);
}

/** The path's segments, percent-decoded; 400 for bad encoding. */
function segmentsOf(rest: string): string[] {
  try {
    return rest
      .split('/')
      .filter((s) => s.length > 0)
      .map(decodeURIComponent);
  } catch {
    throw new HttpProblem(400, 'invalid-request', 'the path is not valid percent-encoding');
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
    throw new HttpProblem(400, 'invalid-request', 'the request is invalid', issues);
  }
  return parsed.data;
}

/** A selection as a job shows it: ids are counted, not listed. */
function describe(selection: z.infer<typeof RedriveRequestSchema>['selection']): unknown {
  if ('ids' in selection) return { ids: selection.ids.length };
  return selection;
}

function dlqOf(source: AdminSource, name: string): DeadLetterQueue {
  try {
    return source.deadLetters(name);
  } catch (error) {
    if (error instanceof RegistrationError) throw new HttpProblem(404, 'not-found', `no endpoint "${name}"`);
    throw error;
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

function serveAsset(
  req: IncomingMessage,
  res: ServerResponse,
  assets: ConsoleAssets,
  rest: string,
  prefix: string,
): void {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    throw new HttpProblem(405, 'method-not-allowed', 'use GET or HEAD');
  }
  if (rest === '') {
    res.writeHead(308, { location: `${prefix}/` });
    res.end();
    return;
  }
  const asset = consoleAsset(assets, rest);
  if (!asset) throw new HttpProblem(404, 'not-found', 'no such file');
  res.writeHead(200, {
    ...asset.headers,
    'content-length': asset.body.length,
  });
  res.end(method === 'HEAD' ? undefined : asset.body);
}
