import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { HealthRequestHandler } from './health-handler.js';

/** A running health server. */
export interface HealthServer {
  /** The port it listens on (the one picked when configured with `0`). */
  readonly port: number;
  readonly host: string;
  /** `http://host:port`, for tools and tests. */
  readonly url: string;
  /** Stops listening and closes open connections (keep-alive ones too). Idempotent. */
  close(): Promise<void>;
}

export interface HealthServerOptions {
  readonly port: number;
  readonly host: string;
  /** Headers and body must arrive within this (408 and close past it). Default 5 000 ms. */
  readonly requestTimeoutMs?: number;
  /** Connections open at once; further ones are closed at once. Default 64. */
  readonly maxConnections?: number;
  /** Where refused connections are reported (at most once every 10 s). */
  readonly logger?: Logger;
}

/** Refused connections are logged at most this often, with their count. */
const DROP_LOG_INTERVAL_MS = 10_000;

/**
 * Serves a health handler on `node:http`. Resolves once listening; rejects when the port cannot be
 * bound (in use, not permitted), so that `bus.start()` fails rather than running without health.
 *
 * Slow clients hold nothing for long: headers and the whole request must arrive within
 * `requestTimeoutMs` (Node answers `408` and closes; its own defaults are 60 s and 300 s), an idle
 * kept-alive connection closes after 5 s, and at most `maxConnections` are open at once: one more is
 * closed as soon as it is accepted, so a client that opens many cannot exhaust the process's sockets.
 */
export async function startHealthServer(
  handler: HealthRequestHandler,
  options: HealthServerOptions,
): Promise<HealthServer> {
  const requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
  const server = createServer(
    {
      headersTimeout: requestTimeoutMs,
      requestTimeout: requestTimeoutMs,
      // How often Node looks for requests past their deadline (its default is 30 s).
      connectionsCheckingInterval: Math.min(1_000, Math.max(50, Math.floor(requestTimeoutMs / 4))),
      keepAliveTimeout: 5_000,
    },
    (req, res) => handler(req, res),
  );
  server.maxConnections = options.maxConnections ?? 64;
  let dropped = 0;
  let lastDropLog = Number.NEGATIVE_INFINITY;
  server.on('drop', () => {
    dropped++;
    const now = Date.now();
    if (now - lastDropLog < DROP_LOG_INTERVAL_MS) return;
    options.logger?.warn(
      { dropped, maxConnections: server.maxConnections },
      'health server at its connection limit: closed new connections',
    );
    lastDropLog = now;
    dropped = 0;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host;
  let closing: Promise<void> | undefined;
  return {
    port,
    host,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
