import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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

/**
 * Serves a health handler on `node:http`. Resolves once listening; rejects when the port cannot be
 * bound (in use, not permitted), so that `bus.start()` fails rather than running without health.
 */
export async function startHealthServer(
  handler: HealthRequestHandler,
  options: { readonly port: number; readonly host: string },
): Promise<HealthServer> {
  const server = createServer((req, res) => handler(req, res));
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
