import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  type BusConfigInput,
  createBus,
  createMemoryBroker,
  defineMessage,
  type MemoryBroker,
  memoryTransport,
  PermanentError,
} from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';

const Charge = defineMessage('billing.charge.v1', z.object({ order: z.number().int(), fail: z.string() }));
const ADMIN = 'admin-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';

interface Json {
  status: number;
  body: Record<string, unknown> & { [key: string]: never | unknown };
}

describe('admin API over HTTP', () => {
  const buses: Bus[] = [];
  let broker: MemoryBroker;
  let logs: string[];

  beforeEach(() => {
    broker = createMemoryBroker();
    logs = [];
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.stop()));
  });

  const started = async (health: BusConfigInput['health']) => {
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
    const bus = createBus(
      { shutdown: { signals: [], timeoutMs: 2_000 }, health: { enabled: true, port: 0, ...health } },
      { transports: [memoryTransport({ broker })], logger },
    );
    bus.endpoint('billing', { retry: { kind: 'none' }, killSwitch: { enabled: false } }).handle(Charge, async (m) => {
      if (m.fail === 'permanent') throw new PermanentError(`order ${m.order} not found`);
      throw new TypeError(`cannot read property "total" of order ${m.order}`);
    });
    buses.push(bus);
    await bus.start();
    return { bus, url: `${bus.healthServer?.url}/health/admin/v1` };
  };
  const call = async (
    url: string,
    options: { token?: string; method?: string; body?: unknown } = {},
  ): Promise<Json> => {
    const response = await fetch(url, {
      method: options.method ?? (options.body !== undefined ? 'POST' : 'GET'),
      headers: {
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
    return { status: response.status, body: (await response.json()) as Json['body'] };
  };
  /** Dead-letters 3 permanent failures and 2 retries exhausted (two failure groups). */
  const withDeadLetters = async (bus: Bus) => {
    for (let order = 1; order <= 3; order++) await bus.send('billing', Charge, { order, fail: 'permanent' });
    for (let order = 10; order <= 11; order++) await bus.send('billing', Charge, { order, fail: 'type' });
    await waitFor(async () => (await bus.deadLetters('billing').count()) === 5, { what: '5 dead letters' });
  };

  it('is off without tokens: neither the API nor the web view answers', async () => {
    const { url } = await started({});
    expect((await call(`${url}/endpoints`)).status).toBe(404);
    const page = await fetch(url.replace('/admin/v1', '/console/'));
    expect(page.status).toBe(404);
  });

  it('needs the read or admin token to read, and the admin token to act', async () => {
    const { url } = await started({ token: ADMIN, readToken: READ });
    expect((await call(`${url}/endpoints`)).status).toBe(401);
    expect((await call(`${url}/endpoints`, { token: 'wrong-token-0123456789abcdef' })).status).toBe(403);
    expect((await call(`${url}/endpoints`, { token: READ })).status).toBe(200);
    expect((await call(`${url}/endpoints`, { token: ADMIN })).status).toBe(200);
    const trip = `${url}/endpoints/billing/kill-switch/trip`;
    expect((await call(trip, { body: { reason: 'x' } })).status).toBe(401);
    expect((await call(trip, { body: { reason: 'x' }, token: READ })).status).toBe(403);
    const redrive = `${url}/endpoints/billing/dead-letters/redrive`;
    expect((await call(redrive, { body: { selection: { all: true }, reason: 'x' }, token: READ })).status).toBe(403);
    expect((await call(`${url}/endpoints`, { method: 'POST', token: ADMIN })).status).toBe(405);
    // Refusals are logged without the token.
    expect(logs.join('\n')).not.toContain(READ);
    expect(logs.join('\n')).toContain('admin trip refused');
  });

  it('with only a read token, reads answer and actions are off', async () => {
    const { url } = await started({ readToken: READ });
    expect((await call(`${url}/endpoints`, { token: READ })).status).toBe(200);
    const trip = await call(`${url}/endpoints/billing/kill-switch/trip`, { body: { reason: 'x' }, token: READ });
    expect(trip.status).toBe(404);
  });

  it('shows endpoints with their kill switch and dead-letter count; trips and resets one or all', async () => {
    const { bus, url } = await started({ token: ADMIN });
    await withDeadLetters(bus);
    const list = await call(`${url}/endpoints`, { token: ADMIN });
    expect(list.body).toMatchObject({
      state: 'started',
      endpoints: [{ name: 'billing', state: 'running', killSwitch: { state: 'closed' }, deadLetters: { count: 5 } }],
    });
    const tripped = await call(`${url}/endpoints/billing/kill-switch/trip`, {
      body: { reason: 'db migration' },
      token: ADMIN,
    });
    expect(tripped.body).toMatchObject({
      endpoints: [{ name: 'billing', killSwitch: { state: 'tripped', reason: 'db migration' } }],
    });
    expect(bus.killSwitch('billing').state).toBe('tripped');
    expect((await call(`${url}/kill-switch/reset`, { body: {}, token: ADMIN })).status).toBe(200);
    expect(bus.killSwitch('billing').state).toBe('closed');
    expect((await call(`${url}/endpoints/nope/kill-switch/trip`, { body: { reason: 'x' }, token: ADMIN })).status).toBe(
      404,
    );
    expect((await call(`${url}/endpoints/constructor`, { token: ADMIN })).status).toBe(404);
    expect((await call(`${url}/endpoints/billing/kill-switch/trip`, { body: {}, token: ADMIN })).body).toMatchObject({
      error: 'invalid-request',
      issues: ['reason: Invalid input: expected string, received undefined'],
    });
  });

  it('groups dead letters by reason and normalised error, lists a group in pages, shows one whole', async () => {
    const { bus, url } = await started({ token: ADMIN });
    await withDeadLetters(bus);
    const stats = await call(`${url}/endpoints/billing/dead-letters/stats`, { token: ADMIN });
    expect(stats.body).toMatchObject({
      scanned: 5,
      truncated: false,
      reasons: [
        { reason: 'permanent-failure', count: 3 },
        { reason: 'retries-exhausted', count: 2 },
      ],
    });
    const groups = stats.body.groups as { id: string; text: string; count: number; errorType: string }[];
    expect(groups.map((g) => [g.errorType, g.text, g.count])).toEqual([
      ['PermanentError', 'order <n> not found', 3],
      ['TypeError', 'cannot read property "…" of order <n>', 2],
    ]);
    const group = groups[0]?.id as string;
    const first = await call(`${url}/endpoints/billing/dead-letters?group=${group}&limit=2`, { token: ADMIN });
    expect((first.body.items as unknown[]).length).toBe(2);
    expect(first.body.next).toEqual(expect.any(String));
    const second = await call(
      `${url}/endpoints/billing/dead-letters?group=${group}&limit=2&cursor=${first.body.next}`,
      {
        token: ADMIN,
      },
    );
    expect((second.body.items as unknown[]).length).toBe(1);
    expect(second.body.next).toBeUndefined();
    const byReason = await call(`${url}/endpoints/billing/dead-letters?reason=retries-exhausted`, { token: ADMIN });
    const items = byReason.body.items as { id: string; errorType: string }[];
    expect(items.map((i) => i.errorType)).toEqual(['TypeError', 'TypeError']);
    const one = await call(
      `${url}/endpoints/billing/dead-letters/messages/${encodeURIComponent(items[0]?.id as string)}`,
      {
        token: ADMIN,
      },
    );
    expect(one.body).toMatchObject({
      reason: 'retries-exhausted',
      fault: { errorName: 'TypeError', endpoint: 'billing' },
      body: { encoding: 'utf8' },
    });
    expect(JSON.parse((one.body.body as { text: string }).text)).toMatchObject({ data: { order: 10 } });
    expect((await call(`${url}/endpoints/billing/dead-letters?from=yesterday`, { token: ADMIN })).status).toBe(400);
    expect((await call(`${url}/endpoints/billing/dead-letters/messages/nope`, { token: ADMIN })).status).toBe(404);
  });

  it('redrives a group as a job a client can follow by polling or by events', async () => {
    const { bus, url } = await started({ token: ADMIN, readToken: READ });
    await withDeadLetters(bus);
    const stats = await call(`${url}/endpoints/billing/dead-letters/stats`, { token: READ });
    const typeErrors = (stats.body.groups as { id: string; errorType: string }[]).find(
      (g) => g.errorType === 'TypeError',
    );
    const started202 = await fetch(`${url}/endpoints/billing/dead-letters/redrive`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ selection: { filter: { group: typeErrors?.id } }, reason: 'fixed in 1.4.2' }),
    });
    expect(started202.status).toBe(202);
    const { job } = (await started202.json()) as { job: { id: string } };
    expect(started202.headers.get('location')).toBe(`/health/admin/v1/jobs/${job.id}`);
    // Server-Sent Events, read as a client without EventSource would: the stream ends when the job does.
    const events = await fetch(`${url}/jobs/${job.id}/events`, { headers: { authorization: `Bearer ${READ}` } });
    expect(events.headers.get('content-type')).toContain('text/event-stream');
    const stream = await events.text();
    const last = JSON.parse(
      stream
        .trim()
        .split('\n')
        .at(-1)
        ?.replace(/^data: /, '') ?? '{}',
    );
    expect(last).toMatchObject({ state: 'succeeded', progress: { total: 2, done: 2, succeeded: 2, missing: 0 } });
    const polled = await call(`${url}/jobs/${job.id}`, { token: READ });
    expect(polled.body).toMatchObject({ job: { state: 'succeeded', kind: 'redrive', reason: 'fixed in 1.4.2' } });
    // The redriven messages fail again (the handler still throws) and come back: 5 again, not 3.
    await waitFor(async () => (await bus.deadLetters('billing').count()) === 5, { what: 'redriven and failed again' });
    expect((await call(`${url}/jobs`, { token: READ })).body.jobs).toHaveLength(1);
  });

  it('purges only after the caller confirmed the count it saw', async () => {
    const { bus, url } = await started({ token: ADMIN });
    await withDeadLetters(bus);
    const purge = `${url}/endpoints/billing/dead-letters/purge`;
    const wrong = await call(purge, {
      body: { selection: { filter: { reason: 'permanent-failure' } }, expect: 2 },
      token: ADMIN,
    });
    expect(wrong.status).toBe(202);
    const failed = await waitForJob(url, (wrong.body.job as { id: string }).id);
    expect(failed).toMatchObject({
      state: 'failed',
      error: expect.stringContaining('expected to remove 2, but the selection holds 3'),
    });
    expect(await bus.deadLetters('billing').count()).toBe(5);
    expect((await call(purge, { body: { selection: { all: true } }, token: ADMIN })).status).toBe(400);
    const right = await call(purge, {
      body: { selection: { filter: { reason: 'permanent-failure' } }, expect: 3 },
      token: ADMIN,
    });
    expect(await waitForJob(url, (right.body.job as { id: string }).id)).toMatchObject({
      state: 'succeeded',
      progress: { total: 3, succeeded: 3 },
    });
    expect(await bus.deadLetters('billing').count()).toBe(2);
    const all = await call(purge, { body: { selection: { all: true }, expect: 2 }, token: ADMIN });
    expect(await waitForJob(url, (all.body.job as { id: string }).id)).toMatchObject({ state: 'succeeded' });
    expect(await bus.deadLetters('billing').count()).toBe(0);
    expect(logs.join('\n')).toContain('dead-letter purge started over the admin API');
  });

  it('serves the web view with a strict content security policy', async () => {
    const { url } = await started({ token: ADMIN });
    const base = url.replace('/admin/v1', '/console');
    const redirect = await fetch(base, { redirect: 'manual' });
    expect(redirect.status).toBe(308);
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await page.text()).toContain('<script type="module" src="console.js"></script>');
    expect((await fetch(`${base}/console.js`)).headers.get('content-type')).toContain('text/javascript');
    expect((await fetch(`${base}/../../../package.json`)).status).toBe(404);
    expect((await fetch(`${base}/%2e%2e%2fpackage.json`)).status).toBe(404);
  });

  const waitForJob = async (url: string, id: string) => {
    let job: Record<string, unknown> = {};
    await waitFor(
      async () => {
        job = (await call(`${url}/jobs/${id}`, { token: ADMIN })).body.job as Record<string, unknown>;
        return ['succeeded', 'failed', 'cancelled'].includes(job.state as string);
      },
      { what: `job ${id}` },
    );
    return job;
  };
});
