import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { KillSwitchControl } from '../killswitch/kill-switch.js';
import { z } from 'zod';
import { matchHealthRoute, pathOf } from './health-route.js';
import { answerFailure, sendJson, switchOf } from './http-answer.js';
import type { HealthSnapshot } from './health-snapshot.js';
import { busView, endpointsOf } from './health-view.js';
import { HttpProblem } from './http-problem.js';
import { readJsonBody } from './read-json-body.js';
import { type Access, createTokenAuthorizer, type TokenAuthorizer, tokenDigest } from './token-authorizer.js';

/** What the handler needs from a bus (a `Bus` is one). */
export interface HealthSource {
  health(): HealthSnapshot;
  /** Throws `RegistrationError` for an endpoint that is not declared. */
  killSwitch(endpoint: string): KillSwitchControl;
}

export interface HealthHandlerOptions {
  /**
   * Admin bearer token: trip and reset, and the detailed views with error texts. Without one, trip
   * and reset answer 404.
   */
  readonly token?: string | undefined;
  /** Read bearer token: when set, the detailed views need it or the admin token (401 without). */
  readonly readToken?: string | undefined;
  /**
   * Decides access instead of `token` and `readToken`: one authorizer shared by every route of a
   * server that needs a token.
   */
  readonly authorizer?: TokenAuthorizer;
  /** Readiness fails while any endpoint's kill switch is not closed. Default false. */
  readonly readinessFailsWhenTripped?: boolean;
  /** Default `/health`; `''` when a framework mounts the handler under its own prefix. */
  readonly basePath?: string;
  /** How long a trip or reset body may take to arrive; `408` past it. Default 5 000 ms. */
  readonly requestTimeoutMs?: number;
  /** Where refused requests and operator actions are logged. */
  readonly logger?: Logger;
}

/**
 * A `node:http` request listener; also an express middleware (`next` is called for paths outside
 * the handler's routes) and usable from fastify with `reply.hijack()` and the raw request/response.
 */
export type HealthRequestHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => void;

const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
const TripBodySchema = z.strictObject({ reason: z.string().trim().min(1).max(500) });
const ResetBodySchema = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() });

/**
 * Creates the health request handler:
 *
 * | route | who | |
 * |---|---|---|
 * | `GET {base}/live` | anyone | 200 while the process answers |
 * | `GET {base}/ready` | anyone | 200, or 503 with reasons: bus not started, transport not connected, (option) a switch not closed |
 * | `GET {base}/endpoints`, `GET {base}/endpoints/:name` | read token or admin token; anyone when no read token is set, without texts | each endpoint: state, in flight, counters, kill switch |
 * | `POST {base}/endpoints/:name/trip` `{reason}`, `POST {base}/trip` `{reason}` | admin token | trips one endpoint's switch, or all |
 * | `POST {base}/endpoints/:name/reset`, `POST {base}/reset` | admin token | resets one, or all |
 *
 * Tokens come as `Authorization: Bearer <token>` (compared in constant time, see
 * `createTokenAuthorizer`); missing → 401, wrong (or the read token for an action) → 403, logged
 * without the token. Only a caller with a token sees texts (trip reasons, the last failure's
 * description and names); without one the detailed views show states, numbers and times. Bodies
 * and parameters are checked with zod (400 names the field). Endpoint names from the path are looked
 * up in a `Map`, never on an object (`constructor` is not an endpoint). Never throws: a failure
 * answers 500.
 */
export function createHealthHandler(bus: HealthSource, options: HealthHandlerOptions = {}): HealthRequestHandler {
  const basePath = options.basePath ?? '/health';
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const authorizer =
    options.authorizer ??
    createTokenAuthorizer({
      admin: options.token ? tokenDigest(options.token) : undefined,
      read: options.readToken ? tokenDigest(options.readToken) : undefined,
    });
  const log = options.logger;

  const refuse = (req: IncomingMessage, status: 401 | 403, what: string, why: string) => {
    log?.warn(
      { route: `${req.method} ${pathOf(req.url)}`, status, remoteAddress: req.socket.remoteAddress },
      `health ${what} refused: ${why}`,
    );
    return new HttpProblem(status, status === 401 ? 'unauthorized' : 'forbidden', why);
  };

  /** The caller's access to a detailed view; throws 401/403 when it has none it needs. */
  const reader = (req: IncomingMessage): Access => {
    const { access, presented } = authorizer.check(req.headers.authorization);
    if (presented && access === 'none') throw refuse(req, 403, 'read', 'the token is wrong');
    if (access === 'none' && authorizer.hasReadToken) throw refuse(req, 401, 'read', 'a bearer token is required');
    return access;
  };

  const actor = (req: IncomingMessage, action: string): void => {
    if (!authorizer.hasAdminToken) {
      throw new HttpProblem(404, 'not-found', `${action} is off: no health token is configured`);
    }
    const { access, presented } = authorizer.check(req.headers.authorization);
    if (!presented) throw refuse(req, 401, action, 'a bearer token is required');
    if (access === 'read') throw refuse(req, 403, action, `the read token does not allow ${action}`);
    if (access !== 'admin') throw refuse(req, 403, action, 'the token is wrong');
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => {
    const route = matchHealthRoute(req.url ?? '/', basePath);
    if (route === undefined) {
      if (next) return next();
      throw new HttpProblem(404, 'not-found', 'no such route');
    }
    const method = req.method ?? 'GET';
    const reading = route.kind !== 'trip' && route.kind !== 'reset';
    const allowed = reading ? ['GET', 'HEAD'] : ['POST'];
    if (!allowed.includes(method)) {
      res.setHeader('allow', allowed.join(', '));
      throw new HttpProblem(405, 'method-not-allowed', `use ${allowed.join(' or ')}`);
    }
    switch (route.kind) {
      case 'live':
        return sendJson(res, 200, { status: 'alive', bus: bus.health().state });
      case 'ready': {
        const reasons = notReadyBecause(bus.health(), options.readinessFailsWhenTripped ?? false);
        return reasons.length === 0
          ? sendJson(res, 200, { status: 'ready' })
          : sendJson(res, 503, { status: 'not-ready', reasons });
      }
      case 'endpoints': {
        const withTexts = reader(req) !== 'none';
        return sendJson(res, 200, busView(bus.health(), withTexts));
      }
      case 'endpoint': {
        const withTexts = reader(req) !== 'none';
        const endpoint = endpointsOf(bus.health(), withTexts).get(route.name);
        if (!endpoint) throw new HttpProblem(404, 'not-found', `no running endpoint "${route.name}"`);
        return sendJson(res, 200, { endpoint: route.name, ...endpoint });
      }
      case 'trip':
      case 'reset': {
        actor(req, route.kind);
        const schema = route.kind === 'trip' ? TripBodySchema : ResetBodySchema;
        const parsed = schema.safeParse(await readJsonBody(req, requestTimeoutMs));
        if (!parsed.success) {
          const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
          throw new HttpProblem(400, 'invalid-request', 'the body is invalid', issues);
        }
        const reason = parsed.data.reason;
        const names = route.name !== undefined ? [route.name] : [...endpointsOf(bus.health(), false).keys()];
        const switches = names.map((name) => switchOf(bus, name));
        for (const ks of switches) {
          if (route.kind === 'trip') ks.trip(reason as string);
          else ks.reset(reason);
        }
        log?.info(
          {
            route: `${method} ${pathOf(req.url)}`,
            endpoints: names,
            reason,
            remoteAddress: req.socket.remoteAddress,
          },
          route.kind === 'trip' ? 'kill switch trip requested over HTTP' : 'kill switch reset requested over HTTP',
        );
        const [only] = switches;
        return route.name !== undefined && only
          ? sendJson(res, 200, { endpoint: route.name, killSwitch: only.view() })
          : sendJson(res, 200, { endpoints: Object.fromEntries(switches.map((ks) => [ks.endpoint, ks.view()])) });
      }
    }
  };

  return (req, res, next) => {
    handle(req, res, next).catch((error: unknown) =>
      answerFailure(req, res, error, {
        realm: 'sluice-health',
        log,
        what: 'health request failed',
        message: 'the health handler failed',
      }),
    );
  };
}

/** Why the bus is not ready; empty when it is. */
export function notReadyBecause(health: HealthSnapshot, failsWhenTripped: boolean): string[] {
  const reasons: string[] = [];
  if (health.state !== 'started') reasons.push(`bus is ${health.state}`);
  if (health.transport.state !== 'connected') {
    reasons.push(`transport ${health.transport.kind} is ${health.transport.state}`);
  }
  for (const [name, endpoint] of Object.entries(health.endpoints)) {
    // A consumer that stopped on its own, or cannot receive, fails readiness; why is in the endpoint
    // view (error texts stay out of this open route).
    const { consumer } = endpoint;
    if (consumer.state === 'restarting' || consumer.state === 'reconnecting') {
      const attempts = consumer.failedAttempts ? `, ${consumer.failedAttempts} restart attempts failed` : '';
      reasons.push(`endpoint ${name}: consumer ${consumer.state} since ${consumer.since}${attempts}`);
    }
  }
  if (failsWhenTripped) {
    for (const [name, endpoint] of Object.entries(health.endpoints)) {
      const state = endpoint.killSwitch.state;
      if (state !== 'closed') reasons.push(`endpoint ${name}: kill switch ${state}`);
    }
  }
  return reasons;
}
