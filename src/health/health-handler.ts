import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { BusHealth } from '../bus/bus.js';
import { RegistrationError } from '../errors/sluice-error.js';
import type { KillSwitchControl } from '../killswitch/kill-switch.js';

/** What the handler needs from a bus (a `Bus` is one). */
export interface HealthSource {
  health(): BusHealth;
  /** Throws `RegistrationError` for an endpoint that is not declared. */
  killSwitch(endpoint: string): KillSwitchControl;
}

export interface HealthHandlerOptions {
  /** Bearer token for trip and reset; without one those routes answer 404. */
  readonly token?: string | undefined;
  /** Readiness fails while any endpoint's kill switch is not closed. Default false. */
  readonly readinessFailsWhenTripped?: boolean;
  /** Default `/health`; `''` when a framework mounts the handler under its own prefix. */
  readonly basePath?: string;
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

const MAX_BODY_BYTES = 16 * 1024;
/** A body over the limit is still read (and dropped) up to this, so that the client gets the 413. */
const DRAIN_BYTES = 1024 * 1024;
// The endpoint-name rule of createBus.
const EndpointNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/, 'letters, digits and . _ - (at most 200)');
const TripBodySchema = z.strictObject({ reason: z.string().trim().min(1).max(500) });
const ResetBodySchema = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() });

type Route =
  | { kind: 'live' | 'ready' | 'endpoints' }
  | { kind: 'endpoint'; name: string }
  | { kind: 'trip' | 'reset'; name?: string };

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
    readonly issues?: string[],
    /** Answer with `connection: close` (the request was not read to its end). */
    readonly close = false,
  ) {
    super(message);
  }
}

/**
 * Creates the health request handler:
 *
 * | route | |
 * |---|---|
 * | `GET {base}/live` | 200 while the process answers |
 * | `GET {base}/ready` | 200, or 503 with reasons: bus not started, transport not connected, (option) a switch not closed |
 * | `GET {base}/endpoints`, `GET {base}/endpoints/:name` | each endpoint: state, in flight, counters, kill switch |
 * | `POST {base}/endpoints/:name/trip` `{reason}`, `POST {base}/trip` `{reason}` | trips one endpoint's switch, or all |
 * | `POST {base}/endpoints/:name/reset`, `POST {base}/reset` | resets one, or all |
 *
 * Trip and reset need `Authorization: Bearer <token>` (compared in constant time); missing → 401,
 * wrong → 403, both logged without the token. Bodies and parameters are checked with zod (400 names
 * the field). Never throws: a failure answers 500.
 */
export function createHealthHandler(bus: HealthSource, options: HealthHandlerOptions = {}): HealthRequestHandler {
  const basePath = options.basePath ?? '/health';
  const tokenDigest = options.token ? sha256(options.token) : undefined;
  const log = options.logger;

  const handle = async (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => {
    const route = match(req.url ?? '/', basePath);
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
    const head = method === 'HEAD';
    switch (route.kind) {
      case 'live':
        return send(res, 200, { status: 'alive', bus: bus.health().state }, head);
      case 'ready': {
        const reasons = notReadyBecause(bus.health(), options.readinessFailsWhenTripped ?? false);
        return reasons.length === 0
          ? send(res, 200, { status: 'ready' }, head)
          : send(res, 503, { status: 'not-ready', reasons }, head);
      }
      case 'endpoints':
        return send(res, 200, bus.health(), head);
      case 'endpoint': {
        const endpoint = bus.health().endpoints[route.name];
        if (!endpoint) throw new HttpProblem(404, 'not-found', `no running endpoint "${route.name}"`);
        return send(res, 200, { endpoint: route.name, ...endpoint }, head);
      }
      case 'trip':
      case 'reset': {
        authorize(req, route.kind);
        const schema = route.kind === 'trip' ? TripBodySchema : ResetBodySchema;
        const parsed = schema.safeParse(await readBody(req));
        if (!parsed.success) {
          const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
          throw new HttpProblem(400, 'invalid-request', 'the body is invalid', issues);
        }
        const reason = parsed.data.reason;
        const names = route.name !== undefined ? [route.name] : Object.keys(bus.health().endpoints);
        const switches = names.map((name) => switchOf(bus, name));
        for (const ks of switches) {
          if (route.kind === 'trip') ks.trip(reason as string);
          else ks.reset(reason);
        }
        log?.info(
          { route: `${method} ${req.url}`, endpoints: names, reason, remoteAddress: req.socket.remoteAddress },
          route.kind === 'trip' ? 'kill switch trip requested over HTTP' : 'kill switch reset requested over HTTP',
        );
        const views = Object.fromEntries(switches.map((ks) => [ks.endpoint, ks.view()]));
        return route.name !== undefined
          ? send(res, 200, { endpoint: route.name, killSwitch: views[route.name] })
          : send(res, 200, { endpoints: views });
      }
    }
  };

  const authorize = (req: IncomingMessage, action: string): void => {
    if (!tokenDigest) {
      throw new HttpProblem(404, 'not-found', `${action} is off: no health token is configured`);
    }
    const header = req.headers.authorization;
    const bearer = typeof header === 'string' ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1] : undefined;
    const refuse = (status: 401 | 403, why: string) => {
      log?.warn(
        { route: `${req.method} ${req.url}`, status, remoteAddress: req.socket.remoteAddress },
        `health ${action} refused: ${why}`,
      );
      return new HttpProblem(status, status === 401 ? 'unauthorized' : 'forbidden', why);
    };
    if (bearer === undefined) throw refuse(401, 'a bearer token is required');
    // Hashing first gives equal lengths, so the comparison time says nothing about the token.
    if (!timingSafeEqual(sha256(bearer), tokenDigest)) throw refuse(403, 'the token is wrong');
  };

  return (req, res, next) => {
    handle(req, res, next).catch((error: unknown) => {
      if (error instanceof HttpProblem) {
        if (error.status === 401) res.setHeader('www-authenticate', 'Bearer realm="sluice-health"');
        if (error.close) res.setHeader('connection', 'close');
        return send(res, error.status, {
          error: error.error,
          message: error.message,
          ...(error.issues ? { issues: error.issues } : {}),
        });
      }
      log?.error({ err: error, route: `${req.method} ${req.url}` }, 'health request failed');
      if (res.headersSent) res.destroy();
      else send(res, 500, { error: 'internal', message: 'the health handler failed' });
    });
  };
}

/** Why the bus is not ready; empty when it is. */
export function notReadyBecause(health: BusHealth, failsWhenTripped: boolean): string[] {
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

function match(url: string, basePath: string): Route | undefined {
  const path = url.split('?', 1)[0] as string;
  if (path !== basePath && !path.startsWith(`${basePath}/`)) return undefined;
  let segments: string[];
  try {
    segments = path
      .slice(basePath.length)
      .split('/')
      .filter((s) => s.length > 0)
      .map(decodeURIComponent);
  } catch {
    throw new HttpProblem(400, 'invalid-request', 'the path is not valid percent-encoding');
  }
  const [first, name, action, ...extra] = segments;
  if (extra.length > 0) return undefined;
  if (name === undefined) {
    if (first === 'live' || first === 'ready' || first === 'endpoints') return { kind: first };
    if (first === 'trip' || first === 'reset') return { kind: first };
    return undefined;
  }
  if (first !== 'endpoints') return undefined;
  if (action !== undefined && action !== 'trip' && action !== 'reset') return undefined;
  const parsed = EndpointNameSchema.safeParse(name);
  if (!parsed.success) {
    throw new HttpProblem(400, 'invalid-request', 'the endpoint name is invalid', [
      `name: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    ]);
  }
  return action === undefined ? { kind: 'endpoint', name: parsed.data } : { kind: action, name: parsed.data };
}

function switchOf(bus: HealthSource, name: string): KillSwitchControl {
  try {
    return bus.killSwitch(name);
  } catch (error) {
    if (error instanceof RegistrationError) throw new HttpProblem(404, 'not-found', `no endpoint "${name}"`);
    throw error;
  }
}

/** The JSON body: already parsed by a framework (`req.body`), or read here up to 16 KiB. */
async function readBody(req: IncomingMessage): Promise<unknown> {
  const given = (req as IncomingMessage & { body?: unknown }).body;
  if (given !== undefined && !Buffer.isBuffer(given) && typeof given !== 'string') return given;
  let text: string;
  if (given !== undefined) text = given.toString();
  else text = await readText(req);
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpProblem(400, 'invalid-request', 'the body is not JSON');
  }
}

/**
 * Reads the body up to MAX_BODY_BYTES. A larger one is read to its end and dropped (up to
 * DRAIN_BYTES), so that the client, still sending, receives the 413 instead of a reset connection;
 * past that the connection is closed after the answer.
 */
function readText(req: IncomingMessage): Promise<string> {
  // Read already (middleware that consumed the stream without setting `req.body`): nothing comes.
  if (req.readableEnded) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = (close: boolean) =>
      new HttpProblem(413, 'too-large', `the body exceeds ${MAX_BODY_BYTES} bytes`, undefined, close);
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else if (size > DRAIN_BYTES) {
        req.off('data', onData);
        req.pause();
        reject(tooLarge(true));
      }
    };
    req.on('data', onData);
    req.once('end', () =>
      size > MAX_BODY_BYTES ? reject(tooLarge(false)) : resolve(Buffer.concat(chunks).toString('utf8')),
    );
    req.once('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, head = false): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(json),
  });
  res.end(head ? undefined : json);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
