import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, defineMessage, LockLostError, TransportError } from '../../../src/index.js';
import { type Delivery, systemClock, type Transport } from '../../../src/transport-core/index.js';
import { RabbitmqTransportConfigSchema } from '../../../transports/rabbitmq/index.js';
import { startTcpProxy } from '../../infra/tcp-proxy.js';
import { waitFor } from '../../support/wait-for.js';
import { rabbitmqctl, trackedRabbitmq, unique } from './rabbitmq-test-kit.js';

/** A pino logger at trace level whose every line lands in `lines`. */
function capturingLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: pino({ level: 'trace' }, stream), lines };
}

const lost = (lines: string[]) => lines.some((line) => line.includes('lost the RabbitMQ connection'));

const user = unique('sluice-test-user');
const password = `Pw-${randomUUID()}`;
const url = `amqp://${user}:${encodeURIComponent(password)}@127.0.0.1:5672`;
const rabbit = trackedRabbitmq({ url, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, publishTimeoutMs: 20_000 });
const open: Transport[] = [];

const message = (body: string) => ({
  messageId: randomUUID(),
  body: Buffer.from(body),
  headers: {},
  contentType: 'text/plain',
  key: undefined,
  messageType: 'reconnect.test.v1',
});

/** Closes this test's own connections on the broker side (the user is unique to this file). */
async function dropOurConnections(): Promise<number> {
  const out = await rabbitmqctl('list_connections', '--quiet', 'pid', 'user');
  const pids = out
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([, who]) => who === user)
    .map(([pid]) => pid as string);
  for (const pid of pids) await rabbitmqctl('close_connection', pid, 'sluice test: simulated network drop');
  return pids.length;
}

describe('rabbitmq credentials and connection recovery', () => {
  beforeAll(async () => {
    await rabbitmqctl('add_user', user, password);
    await rabbitmqctl('set_permissions', '-p', '/', user, '.*', '.*', '.*');
  });
  afterAll(async () => {
    await Promise.allSettled(open.map((t) => t.close()));
    await rabbit.cleanup();
    await rabbitmqctl('delete_user', user).catch(() => {});
  });

  it('never logs the password: not on a refused login, not across a reconnection', async () => {
    const { logger, lines } = capturingLogger();
    const wrong = createBus(
      {
        service: 'creds',
        transport: { ...rabbit.config, url: `amqp://${user}:${password}-wrong@127.0.0.1:5672` },
        shutdown: { signals: [], timeoutMs: 1_000 },
      },
      { transports: [rabbit.definition], logger },
    );
    wrong.endpoint(unique('creds')).handle(defineMessage('creds.test.v1', z.object({})), async () => {});
    const error = await wrong.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect(String((error as Error).message)).not.toContain(password);
    expect((error as Error).message).toContain(`amqp://${user}:***@127.0.0.1:5672`);

    const t = await rabbit.connect(logger);
    open.push(t);
    expect(await dropOurConnections()).toBe(1);
    // The log line, not the state: `rabbitmqctl` may return after the 50 ms reconnection is over.
    await waitFor(() => lost(lines), { what: 'the connection loss' });
    await waitFor(() => t.state === 'connected', { timeoutMs: 10_000, what: 'reconnected' });
    await t.close();

    const text = lines.join('');
    expect(text).toContain('reconnected to RabbitMQ');
    expect(text).toContain(':***@');
    expect(text).not.toContain(password);
    expect(text).not.toContain(encodeURIComponent(password));
  });

  it('after a connection drop: settling a stale delivery fails with LockLostError, the message comes back, a paused consumer stays paused', async () => {
    const { logger, lines } = capturingLogger();
    const t = await rabbit.connect(logger);
    open.push(t);
    const active = unique('reconnect-active');
    const paused = unique('reconnect-paused');
    await t.declare({ address: active, endpoint: active, messageTypes: [] });
    await t.declare({ address: paused, endpoint: paused, messageTypes: [] });
    const got: Delivery[] = [];
    const gotPaused: Delivery[] = [];
    await t.consume(active, (d) => got.push(d), { prefetch: 10 });
    const pausedConsumer = await t.consume(paused, (d) => gotPaused.push(d), { prefetch: 10 });
    await pausedConsumer.pause();
    await t.send(active, message('held'));
    await t.send(paused, message('waits-for-resume'));
    await waitFor(() => got.length === 1, { what: 'first delivery' });

    await dropOurConnections();
    await waitFor(() => lost(lines), { what: 'the connection loss' });
    await expect(got[0]?.complete()).rejects.toBeInstanceOf(LockLostError);
    // A send while reconnecting (if the reconnection is not done yet) waits for the connection
    // instead of failing or dropping.
    const sending = t.send(active, message('sent-while-down'));
    await waitFor(() => t.state === 'connected', { timeoutMs: 10_000, what: 'reconnected' });
    await sending;

    await waitFor(() => got.length === 3, { timeoutMs: 10_000, what: 'redelivery and the new message' });
    const again = got.slice(1).find((d) => d.body.toString() === 'held');
    expect(again?.deliveryCount).toBe(2);
    await Promise.all(got.slice(1).map((d) => d.complete()));

    expect(gotPaused).toHaveLength(0);
    await pausedConsumer.resume();
    await waitFor(() => gotPaused.length === 1, { what: 'delivery after resume' });
    await gotPaused[0]?.complete();
  });

  it('fails a send with TransportError once the transport is closed, never dropping it silently', async () => {
    const short = trackedRabbitmq({ url: 'amqp://guest:guest@127.0.0.1:5672', publishTimeoutMs: 300 });
    const t = await short.connect();
    open.push(t);
    await t.close();
    await expect(t.send('anywhere', message('x'))).rejects.toBeInstanceOf(TransportError);
  });

  it('fails the start within connectTimeoutMs when the broker accepts the connection and never answers', async () => {
    // A hung broker, or a load balancer with no backend: TCP connects, no AMQP byte ever comes.
    const sockets = new Set<net.Socket>();
    const closers: (() => Promise<void>)[] = [];
    let closed = 0;
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => closed++);
      socket.resume(); // reads (and ignores) what the client sends, so that its close is seen
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const { logger, lines } = capturingLogger();
      const bus = createBus(
        {
          service: 'silent',
          transport: { ...rabbit.config, url: `amqp://${user}:${password}@127.0.0.1:${port}`, connectTimeoutMs: 500 },
          shutdown: { signals: [], timeoutMs: 1_000 },
        },
        { transports: [rabbit.definition], logger },
      );
      bus.endpoint(unique('silent')).handle(defineMessage('silent.test.v1', z.object({})), async () => {});
      const started = Date.now();
      const error = await bus.start().catch((e: unknown) => e);
      // A bound, not a speed: the 500 ms configured, not the 10 s default (and not for ever).
      expect(Date.now() - started).toBeLessThan(5_000);
      closers.push(() => bus.stop());
      expect(error).toBeInstanceOf(TransportError);
      expect((error as Error).message).toContain(`cannot connect to RabbitMQ at amqp://${user}:***@127.0.0.1:${port}`);
      expect((error as Error).message).toContain('ETIMEDOUT');
      expect(sockets.size).toBe(1);
      // The attempt gave up on the socket: the server sees it closed.
      await waitFor(() => closed === 1, { what: 'the socket closed' });
      expect(lines.join('\n')).not.toContain(password);
    } finally {
      for (const close of closers.splice(0)) await close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('closes within connectTimeoutMs when the broker stops answering (amqplib waits for a reply that never comes)', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: 5672 });
    try {
      const config = RabbitmqTransportConfigSchema.parse({
        ...rabbit.config,
        url: `amqp://${user}:${encodeURIComponent(password)}@127.0.0.1:${proxy.port}`,
        connectTimeoutMs: 500,
      });
      const transport = rabbit.definition.create(config, { logger: pino({ level: 'silent' }), clock: systemClock });
      await transport.connect();
      proxy.blackhole();
      const closing = Date.now();
      await transport.close();
      // A bound, not a speed: without it close() waits for the broker's CloseOk for ever.
      expect(Date.now() - closing).toBeLessThan(5_000);
      expect(transport.state).toBe('closed');
    } finally {
      await proxy.close();
    }
  });
});
