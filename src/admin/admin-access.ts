import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { pathOf } from '../health/health-route.js';
import { HttpProblem } from '../health/http-problem.js';
import type { TokenAuthorizer } from '../health/token-authorizer.js';

/**
 * Who may do what on the admin API, with the health server's authorizer: reads need the read or
 * the admin token (`401` without one, `403` for a wrong one); actions need the admin token (`404`
 * when none is configured, `403` for the read token). Refusals are logged (warn), and actions taken
 * are audited (info), with the route and the caller's address.
 */
export function adminAccess(authorizer: TokenAuthorizer, log: Logger | undefined) {
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
  return { mayRead, mayAct, audit };
}
