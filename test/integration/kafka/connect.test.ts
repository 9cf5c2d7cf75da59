import net from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBus, defineMessage, TransportError } from '../../../src/index.js';
import { KafkaTransportConfigSchema, kafkaTransport } from '../../../transports/kafka/index.js';
import { systemClock } from '../../../src/transport-core/index.js';

/**
 * Start-up against a broker address that accepts TCP connections and never answers (a hung broker,
 * a port forwarded to nothing): kafkajs counts the open socket as a connected broker once its first
 * request has timed out, so without a check the transport would say "connected" and start would fail
 * later, at the first declare, with kafkajs's "Broker not connected".
 */
describe('kafka: connecting to a broker that never answers', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function silentServer(): Promise<{ port: number; sockets: () => number }> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    });
    return { port: (server.address() as net.AddressInfo).port, sockets: () => sockets.size };
  }

  const config = (port: number) => ({
    kind: 'kafka' as const,
    brokers: [`127.0.0.1:${port}`],
    clientLogLevel: 'nothing' as const,
    connectionTimeoutMs: 500,
    requestTimeoutMs: 1_000,
  });

  it('fails connect with TransportError naming the brokers, not "connected"', async () => {
    const { port, sockets } = await silentServer();
    const transport = kafkaTransport().create(KafkaTransportConfigSchema.parse(config(port)), {
      logger: pino({ level: 'silent' }),
      clock: systemClock,
    });
    closers.push(() => transport.close());
    const error = await transport.connect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect((error as Error).message).toMatch(new RegExp(`^cannot connect to kafka at 127\\.0\\.0\\.1:${port}: .+`));
    expect(transport.state).not.toBe('connected');
    expect(sockets()).toBeGreaterThan(0);
  });

  it('fails bus.start() with that error, and bus.stop() returns', async () => {
    const { port } = await silentServer();
    const bus = createBus(
      { service: 'silent', transport: config(port), shutdown: { signals: [], timeoutMs: 1_000 } },
      { transports: [kafkaTransport()], logger: pino({ level: 'silent' }) },
    );
    bus.endpoint('silent').handle(defineMessage('it.silent.v1', z.object({})), async () => {});
    const error = await bus.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect((error as Error).message).toMatch(new RegExp(`^cannot connect to kafka at 127\\.0\\.0\\.1:${port}: .+`));
    await bus.stop();
    expect(bus.state).toBe('stopped');
  });
});
