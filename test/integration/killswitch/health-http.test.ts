import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  type BusConfigInput,
  createBus,
  createHealthHandler,
  createMemoryBroker,
  defineMessage,
  type KillSwitchChange,
  type MemoryBroker,
  memoryTransport,
} from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';

const Entry = defineMessage('ledger.entry.v1', z.object({ n: z.number().int() }));
const TOKEN = 'test-token-0123456789abcdef';

describe('health endpoint over HTTP', () => {
  const buses: Bus[] = [];
  const servers: Server[] = [];
  let broker: MemoryBroker;
  let logLines: Record<string, unknown>[];

  const bus = (
    health: BusConfigInput['health'],
    endpoints = ['ledger'],
    handler: () => Promise<void> = async () => {},
  ) => {
    const logger = pino(
      { level: 'info' },
      {
        write(line: string) {
          logLines.push(JSON.parse(line));
        },
      },
    );
    const b = createBus(
      { shutdown: { signals: [], timeoutMs: 2_000 }, health },
      { transports: [memoryTransport({ broker })], logger },
    );
    for (const name of endpoints) b.endpoint(name, { retry: { kind: 'none' } }).handle(Entry, handler);
    buses.push(b);
    return b;
  };
  const started = async (health: BusConfigInput['health'], endpoints?: string[], handler?: () => Promise<void>) => {
    const b = bus({ enabled: true, port: 0, ...health }, endpoints, handler);
    await b.start();
    const url = b.healthServer?.url;
    if (!url) throw new Error('no health server');
    return { b, url };
  };
  const post = (url: string, body?: unknown, token?: string) =>
    fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const json = async (response: Response) => ({
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
  });

  beforeEach(() => {
    broker = createMemoryBroker();
    logLines = [];
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.stop()));
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it('answers liveness, readiness and the endpoint view', async () => {
    const { url } = await started({ token: TOKEN });
    expect(await json(await fetch(`${url}/health/live`))).toEqual({
      status: 200,
      body: { status: 'alive', bus: 'started' },
    });
    expect(await json(await fetch(`${url}/health/ready`))).toEqual({ status: 200, body: { status: 'ready' } });
    const view = await json(await fetch(`${url}/health/endpoints`));
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({
      state: 'started',
      transport: { kind: 'memory', state: 'connected' },
      endpoints: {
        ledger: {
          state: 'running',
          inFlight: 0,
          counters: { received: 0 },
          killSwitch: { state: 'closed', manual: false, trips: 0 },
        },
      },
    });
    const one = await json(await fetch(`${url}/health/endpoints/ledger`));
    expect(one.body).toMatchObject({ endpoint: 'ledger', state: 'running', killSwitch: { state: 'closed' } });
  });

  it('trips and resets an endpoint with the token, and readiness follows when configured', async () => {
    const { b, url } = await started({ token: TOKEN, readinessFailsWhenTripped: true });
    const events: KillSwitchChange[] = [];
    b.on('killswitch.tripped', (e) => {
      events.push(e);
    });
    b.on('killswitch.reset', (e) => {
      events.push(e);
    });

    const tripped = await json(await post(`${url}/health/endpoints/ledger/trip`, { reason: 'db failover' }, TOKEN));
    expect(tripped).toMatchObject({
      status: 200,
      body: { endpoint: 'ledger', killSwitch: { state: 'tripped', manual: true, reason: 'db failover' } },
    });
    expect(b.killSwitch('ledger').state).toBe('tripped');
    expect(await json(await fetch(`${url}/health/ready`))).toEqual({
      status: 503,
      body: { status: 'not-ready', reasons: ['endpoint ledger: kill switch tripped'] },
    });

    // Tripped by hand, messages stay on the broker.
    await b.send('ledger', Entry, { n: 1 });
    await waitFor(() => broker.queue('ledger').readyCount === 1 && b.health().endpoints.ledger?.inFlight === 0);
    expect(b.health().endpoints.ledger?.counters.completed).toBe(0);

    const reset = await json(await post(`${url}/health/endpoints/ledger/reset`, undefined, TOKEN));
    expect(reset).toMatchObject({ status: 200, body: { killSwitch: { state: 'closed' } } });
    expect(await json(await fetch(`${url}/health/ready`))).toEqual({ status: 200, body: { status: 'ready' } });
    await waitFor(() => b.health().endpoints.ledger?.counters.completed === 1);
    expect(events.map((e) => [e.to, e.manual, e.reason])).toEqual([
      ['tripped', true, 'db failover'],
      ['closed', true, 'reset by operator'],
    ]);
    expect(logLines.some((l) => l.msg === 'kill switch trip requested over HTTP' && l.reason === 'db failover')).toBe(
      true,
    );
  });

  it('refuses trip and reset without the token (401) or with a wrong one (403), and logs it without the token', async () => {
    const { b, url } = await started({ token: TOKEN });
    const missing = await post(`${url}/health/endpoints/ledger/trip`, { reason: 'x' });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await missing.json()).toMatchObject({ error: 'unauthorized' });

    const wrong = await post(`${url}/health/trip`, { reason: 'x' }, 'not-the-token-at-all-123');
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toMatchObject({ error: 'forbidden' });
    const basic = await fetch(`${url}/health/reset`, { method: 'POST', headers: { authorization: `Basic ${TOKEN}` } });
    expect(basic.status).toBe(401);

    expect(b.killSwitch('ledger').state).toBe('closed');
    const refused = logLines.filter((l) => /^health (trip|reset) refused/.test(String(l.msg)));
    expect(refused.map((l) => l.status)).toEqual([401, 403, 401]);
    expect(refused[1]).toMatchObject({ level: 40, route: 'POST /health/trip', component: 'health' });
    expect(JSON.stringify(logLines)).not.toContain('not-the-token-at-all-123');
    expect(JSON.stringify(logLines)).not.toContain(TOKEN);
  });

  it('turns the mutating routes off when no token is configured', async () => {
    const { b, url } = await started({});
    const response = await post(`${url}/health/endpoints/ledger/trip`, { reason: 'x' }, TOKEN);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ message: 'trip is off: no health token is configured' });
    expect(b.killSwitch('ledger').state).toBe('closed');
    expect((await fetch(`${url}/health/live`)).status).toBe(200);
  });

  it('validates bodies and parameters', async () => {
    const { b, url } = await started({ token: TOKEN });
    expect(await json(await post(`${url}/health/endpoints/ledger/trip`, {}, TOKEN))).toMatchObject({
      status: 400,
      body: { error: 'invalid-request', issues: [expect.stringMatching(/^reason: /)] },
    });
    expect(await json(await post(`${url}/health/endpoints/ledger/trip`, { reason: '  ' }, TOKEN))).toMatchObject({
      status: 400,
    });
    expect(
      await json(await post(`${url}/health/endpoints/ledger/trip`, { reason: 'x', force: true }, TOKEN)),
    ).toMatchObject({ status: 400, body: { issues: [expect.stringContaining('force')] } });
    const notJson = await fetch(`${url}/health/trip`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: 'reason=x',
    });
    expect(notJson.status).toBe(400);
    expect((await post(`${url}/health/endpoints/nope/trip`, { reason: 'x' }, TOKEN)).status).toBe(404);
    expect((await fetch(`${url}/health/endpoints/nope`)).status).toBe(404);
    expect((await fetch(`${url}/health/endpoints/%2E%2Ebad`)).status).toBe(400);
    expect((await fetch(`${url}/health/unknown`)).status).toBe(404);
    const get = await fetch(`${url}/health/endpoints/ledger/trip`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const big = await post(`${url}/health/trip`, { reason: 'x'.repeat(20_000) }, TOKEN);
    expect(big.status).toBe(413);
    // Far larger bodies get the answer too, again and again on the kept-alive connection, not a
    // reset connection mid-upload ("fetch failed" within a few requests before the fix).
    for (const size of [300_000, 900_000, 300_000, 900_000, 600_000, 600_000]) {
      const huge = await post(`${url}/health/trip`, { reason: 'x'.repeat(size) }, TOKEN);
      expect(await json(huge)).toMatchObject({ status: 413, body: { error: 'too-large' } });
    }
    // Past 1 MiB the server stops reading and closes the connection after its answer (which the
    // client may not see while still sending); the server itself carries on.
    const answer = await post(`${url}/health/trip`, { reason: 'x'.repeat(3_000_000) }, TOKEN).catch(() => undefined);
    if (answer) expect(answer.status).toBe(413);
    expect((await fetch(`${url}/health/live`)).status).toBe(200);
    expect(b.killSwitch('ledger').state).toBe('closed');
  });

  it('trips and resets every endpoint at once', async () => {
    const { b, url } = await started({ token: TOKEN }, ['ledger', 'audit']);
    const all = await json(await post(`${url}/health/trip`, { reason: 'maintenance window' }, TOKEN));
    expect(all.status).toBe(200);
    expect(Object.keys(all.body.endpoints as object).sort()).toEqual(['audit', 'ledger']);
    expect(b.killSwitch('ledger').state).toBe('tripped');
    expect(b.killSwitch('audit').state).toBe('tripped');
    // Readiness ignores tripped switches unless configured to fail on them.
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    expect((await post(`${url}/health/reset`, { reason: 'done' }, TOKEN)).status).toBe(200);
    expect(b.killSwitch('audit').view()).toMatchObject({ state: 'closed' });
  });

  it('reports not ready when the transport is disconnected', async () => {
    const { b, url } = await started({});
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    await b.transport.close();
    expect(await json(await fetch(`${url}/health/ready`))).toEqual({
      status: 503,
      body: { status: 'not-ready', reasons: ['transport memory is closed'] },
    });
    expect((await fetch(`${url}/health/live`)).status).toBe(200);
  });

  it('works as a handler inside another server, passing other paths on', async () => {
    const b = bus(undefined);
    await b.start();
    const handler = createHealthHandler(b, { token: TOKEN, basePath: '/ops' });
    const server = createServer((req, res) =>
      handler(req, res, () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('app route');
      }),
    );
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(b.healthServer).toBeUndefined();
    expect(await (await fetch(`${url}/orders`)).text()).toBe('app route');
    expect((await fetch(`${url}/ops/ready`)).status).toBe(200);
    expect((await post(`${url}/ops/endpoints/ledger/trip`, { reason: 'from express' }, TOKEN)).status).toBe(200);
    expect(b.killSwitch('ledger').view()).toMatchObject({ state: 'tripped', reason: 'from express' });
  });

  it('uses a body a framework already parsed', async () => {
    const b = bus(undefined);
    await b.start();
    const handler = createHealthHandler(b, { token: TOKEN });
    const server = createServer((req, res) => {
      // As express.json() or fastify would: the stream is consumed, the object is on req.body.
      Object.assign(req, { body: { reason: 'pre-parsed' } });
      req.resume();
      handler(req, res);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect((await post(`${url}/health/endpoints/ledger/trip`, { reason: 'ignored' }, TOKEN)).status).toBe(200);
    expect(b.killSwitch('ledger').view().reason).toBe('pre-parsed');
  });

  it('answers (400: no reason) when middleware consumed the body without parsing it', async () => {
    const b = bus(undefined);
    await b.start();
    const handler = createHealthHandler(b, { token: TOKEN });
    const server = createServer((req, res) => {
      // Read to its end, nothing on req.body: the handler must not wait for data that never comes.
      req.resume();
      req.once('end', () => handler(req, res));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const answer = await post(`${url}/health/endpoints/ledger/trip`, { reason: 'consumed' }, TOKEN);
    expect(await json(answer)).toMatchObject({ status: 400, body: { error: 'invalid-request' } });
    expect(b.killSwitch('ledger').state).toBe('closed');
  });

  it('is not ready before start and after stop', async () => {
    const b = bus(undefined);
    const handler = createHealthHandler(b);
    const server = createServer((req, res) => handler(req, res));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(await json(await fetch(`${url}/health/ready`))).toEqual({
      status: 503,
      body: { status: 'not-ready', reasons: ['bus is created', 'transport memory is idle'] },
    });
    await b.start();
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    await b.stop();
    expect((await json(await fetch(`${url}/health/ready`))).body.reasons).toContain('bus is stopped');
  });

  const READ_TOKEN = 'read-token-fedcba9876543210';
  const FAILURE = 'relation "billing.card_secrets" does not exist (db.internal.example:5432)';
  const failing = async () => {
    throw new Error(FAILURE);
  };
  const get = (url: string, token?: string) =>
    fetch(url, token !== undefined ? { headers: { authorization: `Bearer ${token}` } } : {});

  it('keeps error texts from a caller without a token; the admin token shows them', async () => {
    const { b, url } = await started({ token: TOKEN }, ['ledger'], failing);
    await b.send('ledger', Entry, { n: 1 });
    await waitFor(() => b.health().endpoints.ledger?.counters.deadLettered === 1, { what: 'the dead letter' });

    const open = await json(await get(`${url}/health/endpoints`));
    expect(open.status).toBe(200);
    const ledger = (open.body.endpoints as Record<string, { killSwitch: Record<string, unknown> }>).ledger;
    expect(ledger?.killSwitch).toMatchObject({ state: 'closed', consecutiveFailures: 1 });
    expect(ledger?.killSwitch.lastFailure).toEqual({ at: expect.any(String) });
    const one = await json(await get(`${url}/health/endpoints/ledger`));
    expect(one.body).toMatchObject({ endpoint: 'ledger', counters: { deadLettered: 1 } });
    for (const text of [JSON.stringify(open.body), JSON.stringify(one.body)]) {
      expect(text).not.toMatch(/card_secrets|db\.internal|Error/);
    }

    const admin = await json(await get(`${url}/health/endpoints/ledger`, TOKEN));
    expect(admin.body).toMatchObject({
      killSwitch: { lastFailure: { errorName: 'Error', description: expect.stringContaining('card_secrets') } },
    });
    expect((await get(`${url}/health/endpoints`, 'not-the-token-at-all-123')).status).toBe(403);
  });

  it('with a read token, the detailed views need a token; liveness and readiness stay open', async () => {
    const { b, url } = await started({ token: TOKEN, readToken: READ_TOKEN }, ['ledger'], failing);
    await b.send('ledger', Entry, { n: 1 });
    await waitFor(() => b.health().endpoints.ledger?.counters.deadLettered === 1, { what: 'the dead letter' });

    for (const path of ['/health/endpoints', '/health/endpoints/ledger']) {
      const anonymous = await get(`${url}${path}`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(JSON.stringify(await anonymous.json())).not.toContain('card_secrets');
      expect((await fetch(`${url}${path}`, { method: 'HEAD' })).status).toBe(401);
      expect((await get(`${url}${path}`, 'not-the-token-at-all-123')).status).toBe(403);
      for (const token of [READ_TOKEN, TOKEN]) {
        const seen = await get(`${url}${path}`, token);
        expect(seen.status).toBe(200);
        expect(JSON.stringify(await seen.json())).toContain('card_secrets');
      }
    }
    expect((await get(`${url}/health/live`)).status).toBe(200);
    expect((await get(`${url}/health/ready`)).status).toBe(200);

    // The read token reads; it never trips.
    const refused = await post(`${url}/health/endpoints/ledger/trip`, { reason: 'x' }, READ_TOKEN);
    expect(await json(refused)).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    expect(b.killSwitch('ledger').state).toBe('closed');
    expect(logLines.filter((l) => /^health (read|trip) refused/.test(String(l.msg))).map((l) => l.status)).toEqual([
      401, 401, 403, 401, 401, 403, 403,
    ]);
    expect(JSON.stringify(logLines)).not.toContain(READ_TOKEN);
    expect(JSON.stringify(logLines)).not.toContain(TOKEN);
  });

  it('refuses a read token equal to the admin token, naming the field', () => {
    expect(() => bus({ token: TOKEN, readToken: TOKEN })).toThrow(/health\.readToken: must differ from health\.token/);
    expect(() => bus({ readToken: 'short' })).toThrow(/health\.readToken: must be at least 16 characters/);
  });

  it('looks endpoint names up as endpoints, never as properties of an object', async () => {
    const { b, url } = await started({ token: TOKEN });
    // Each answered 200 ("endpoint": "constructor") before: the name was looked up on a plain object.
    for (const name of ['constructor', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf']) {
      expect((await get(`${url}/health/endpoints/${name}`)).status).toBe(404);
      expect((await get(`${url}/health/endpoints/${name}`, TOKEN)).status).toBe(404);
      expect((await post(`${url}/health/endpoints/${name}/trip`, { reason: 'x' }, TOKEN)).status).toBe(404);
    }
    expect((await get(`${url}/health/endpoints/__proto__`)).status).toBe(400);
    expect(b.killSwitch('ledger').state).toBe('closed');
  });

  /**
   * Sends `payload` on a raw connection and collects what comes back until the server closes it.
   * Rejects if the server still holds the connection after `deadlineMs` (Node's own limits are 60 s
   * for headers and 300 s for a request).
   */
  const raw = (url: string, payload: string, deadlineMs = 20_000) =>
    new Promise<string>((resolve, reject) => {
      const { hostname, port } = new URL(url);
      let received = '';
      const socket = connect(Number(port), hostname, () => socket.write(payload));
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`the server still holds the connection after ${deadlineMs} ms`));
      }, deadlineMs);
      socket.on('data', (chunk) => {
        received += chunk.toString();
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(received);
      });
    });
  const tripHead = (url: string, token: string, length: number) =>
    `POST /health/endpoints/ledger/trip HTTP/1.1\r\nHost: ${new URL(url).host}\r\n` +
    `Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

  it('answers 408 and closes when headers or an authenticated body never end (default timeout)', async () => {
    const { b, url } = await started({ token: TOKEN });
    const answers = await Promise.all([
      raw(url, ''),
      raw(url, `GET /health/live HTTP/1.1\r\nHost: ${new URL(url).host}\r\nX-Slow: 1`),
      raw(url, `${tripHead(url, TOKEN, 100)}{"reason":`),
    ]);
    for (const answer of answers) expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(b.killSwitch('ledger').state).toBe('closed');
    expect((await get(`${url}/health/live`)).status).toBe(200);
  });

  it('closes connections over the limit at once, and serves again once they are gone', async () => {
    const { url } = await started({ maxConnections: 2, requestTimeoutMs: 1_000 });
    const host = new URL(url).host;
    const holding = [raw(url, `GET /health/live HTTP/1.1\r\nHost: ${host}\r\n`), raw(url, 'GET /health/live')];
    // Which connection the server accepts first is not ours to order: try until one is refused.
    // A refused connection is closed without a byte of answer; an accepted one gets a 200.
    await waitFor(
      async () => (await raw(url, `GET /health/live HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)) === '',
      { what: 'a connection over the limit closed without an answer' },
    );
    expect(logLines.some((l) => l.msg === 'health server at its connection limit: closed new connections')).toBe(true);
    // The held ones end with the request timeout (or were the ones refused), then the server serves again.
    for (const answer of await Promise.all(holding)) expect(answer).toMatch(/^(HTTP\/1\.1 408 |$)/);
    expect((await get(`${url}/health/live`)).status).toBe(200);
  });

  it('bounds a body that never ends inside an application server too', async () => {
    const b = bus(undefined);
    await b.start();
    const handler = createHealthHandler(b, { token: TOKEN, requestTimeoutMs: 500 });
    // Node's defaults here: the request may take 300 s; the handler's own deadline answers first.
    const server = createServer((req, res) => handler(req, res));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const answer = await raw(url, `${tripHead(url, TOKEN, 100)}{"reason":`);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toMatch(/connection: close/i);
    expect(answer).toContain('"error":"request-timeout"');
    expect(b.killSwitch('ledger').state).toBe('closed');
  });
});
