import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { RegistrationError } from '../errors/sluice-error.js';
import type { KillSwitchControl } from '../killswitch/kill-switch.js';
import { pathOf } from './health-route.js';
import { HttpProblem } from './http-problem.js';

/**
 * A JSON answer of the health and admin handlers: never cached, never sniffed as anything else, no
 * body for a HEAD request.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-length': Buffer.byteLength(json),
  });
  res.end(res.req?.method === 'HEAD' ? undefined : json);
}

/**
 * Answers a request that failed: an {@link HttpProblem} with its status and JSON body (a
 * `www-authenticate` challenge for `realm` on a 401), anything else logged and answered 500 with
 * `message`. Nothing when the response already ended or the client is gone.
 */
export function answerFailure(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  options: {
    readonly realm: string;
    readonly log: Logger | undefined;
    readonly what: string;
    readonly message: string;
  },
): void {
  // Answered already (Node's own 408) or the client is gone: nobody to tell.
  if (res.destroyed || res.writableEnded) return;
  if (error instanceof HttpProblem) {
    if (error.status === 401) res.setHeader('www-authenticate', `Bearer realm="${options.realm}"`);
    if (error.close) res.setHeader('connection', 'close');
    sendJson(res, error.status, {
      error: error.error,
      message: error.message,
      ...(error.issues ? { issues: error.issues } : {}),
    });
    return;
  }
  options.log?.error({ err: error, route: `${req.method} ${pathOf(req.url)}` }, options.what);
  if (res.headersSent) res.destroy();
  else sendJson(res, 500, { error: 'internal', message: options.message });
}

/** The kill switch of a declared endpoint; 404 for a name that is not one. */
export function switchOf(source: { killSwitch(endpoint: string): KillSwitchControl }, name: string): KillSwitchControl {
  try {
    return source.killSwitch(name);
  } catch (error) {
    if (error instanceof RegistrationError) throw new HttpProblem(404, 'not-found', `no endpoint "${name}"`);
    throw error;
  }
}
