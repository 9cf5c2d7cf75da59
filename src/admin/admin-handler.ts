import type { IncomingMessage, ServerResponse } from 'node:http';
import { pathOf } from '../health/health-route.js';
import { answerFailure } from '../health/http-answer.js';
import { HttpProblem } from '../health/http-problem.js';
import { adminAccess } from './admin-access.js';
import { type AdminExchange, type AdminHandlerOptions, type AdminSource, segmentsOf } from './admin-request.js';
import { type AdminRoute, matchAdminRoute, methodOf } from './admin-route.js';
import { serveAsset } from './console-assets.js';
import { answerDeadLetterRoute } from './dead-letter-routes.js';
import { answerEndpointRoute } from './endpoint-routes.js';
import { answerExplainRoute } from './explain-route.js';
import { answerJobRoute } from './job-routes.js';

export type { AdminHandlerOptions, AdminSource } from './admin-request.js';

/**
 * The admin API (JSON, versioned: `{basePath}/admin/v1/...`) and the web view's files
 * (`{basePath}/console/`). Returns a request listener that answers its own paths and hands every
 * other one to `next` (the health routes).
 *
 * Access, with the health server's authorizer: reads need the read or the admin token (`401`
 * without one, `403` for a wrong one); actions (trip, reset, redrive, purge, cancel) need the admin
 * token (`404` when none is configured, `403` for the read token). The caller decides that the API
 * is on (a token is configured). Long operations are jobs (see `JobRegistry`): `202` with the
 * job and its location. Never throws: a failure answers 500 without its text.
 */
export function createAdminHandler(
  source: AdminSource,
  options: AdminHandlerOptions,
): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  const { authorizer, basePath, logger: log } = options;
  const apiPrefix = `${basePath}/admin/v1`;
  const consolePrefix = `${basePath}/console`;

  const { mayRead, mayAct, audit } = adminAccess(authorizer, log);

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

  const answer = (req: IncomingMessage, res: ServerResponse, route: AdminRoute): Promise<void> => {
    const exchange: AdminExchange = { req, res, source, options, apiPrefix, audit };
    switch (route.kind) {
      case 'endpoints':
      case 'endpoint':
      case 'trip':
      case 'reset':
        return answerEndpointRoute(exchange, route);
      case 'dead-letters':
      case 'dead-letter-stats':
      case 'dead-letter':
      case 'redrive':
      case 'purge':
        return answerDeadLetterRoute(exchange, route);
      case 'explain-key':
      case 'explain-message':
        return answerExplainRoute(exchange, route);
      case 'jobs':
      case 'job':
      case 'job-events':
      case 'job-cancel':
        return answerJobRoute(exchange, route);
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
