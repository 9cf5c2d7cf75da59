import net from 'node:net';

/**
 * A TCP proxy for fault tests: forwards 127.0.0.1:<port> to a target, and on command
 * - `blackhole()`: stops forwarding in both directions without closing anything — a database that
 *   stops answering (packets dropped, no reset). Connections opened meanwhile are accepted and hang.
 *   `restore()` forwards again (what was held back flows, as TCP retransmission would deliver it).
 *   A side that closes its connection meanwhile closes the other side at once, so that sessions a
 *   test gives up on do not linger on the server holding locks; with `{ lateDelivery: true }`, what
 *   a client sent before it gave up still reaches the server at `restore()`, followed by the end of
 *   its connection, as TCP retransmission would deliver its data and its FIN: a COMMIT the client
 *   gave up on (its statement timed out) is applied after all, and the client never learns it.
 * - `refuse()`: stops listening: new connections are refused (ECONNREFUSED); `listen()` listens again.
 * - `reset()`: closes every open connection at once (ECONNRESET / "Connection terminated").
 * Used instead of disrupting a shared server: only the connections through the proxy are affected.
 */
export interface TcpProxy {
  readonly port: number;
  /** Open client connections through the proxy. */
  readonly connections: number;
  blackhole(options?: { readonly lateDelivery?: boolean }): void;
  restore(): void;
  refuse(): Promise<void>;
  listen(): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

interface Pair {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** Chunks held back while black-holed, toward the upstream and toward the client. */
  readonly toUpstream: Buffer[];
  readonly toClient: Buffer[];
  /** The client left while black-holed with late delivery: its held data goes at restore, then the upstream ends. */
  clientGone: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }, port = 0): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let holding = false;
  let lateDelivery = false;
  const release = (pair: Pair) => {
    for (const chunk of pair.toUpstream.splice(0)) pair.upstream.write(chunk);
    if (pair.clientGone) {
      pair.toClient.length = 0;
      pair.upstream.end();
      return;
    }
    for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
  };
  const onConnection = (client: net.Socket) => {
    const upstream = net.connect(target);
    const pair: Pair = { client, upstream, toUpstream: [], toClient: [], clientGone: false };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // The client left: with late delivery while black-holed, the upstream stays for its held data.
    const clientEnd = () => {
      if (pair.clientGone) return;
      if (holding && lateDelivery) {
        pair.clientGone = true;
        client.destroy();
        return;
      }
      end();
    };
    // Read on while black-holed (holding the data back), so that a close is still seen.
    client.on('data', (chunk) => (holding ? pair.toUpstream.push(chunk) : upstream.write(chunk)));
    upstream.on('data', (chunk) => {
      if (pair.clientGone) return;
      if (holding) pair.toClient.push(chunk);
      else client.write(chunk);
    });
    for (const event of ['end', 'close', 'error'] as const) {
      client.on(event, clientEnd);
      upstream.on(event, end);
    }
  };
  let server = net.createServer(onConnection);
  const listenOn = (p: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  const boundPort = await listenOn(port);
  let listening = true;
  const stopListening = () =>
    new Promise<void>((resolve) => {
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
    });

  return {
    port: boundPort,
    get connections() {
      return pairs.size;
    },
    blackhole(options) {
      holding = true;
      lateDelivery = options?.lateDelivery ?? false;
    },
    restore() {
      holding = false;
      for (const pair of pairs) release(pair);
    },
    async refuse() {
      await stopListening();
    },
    async listen() {
      if (listening) return;
      server = net.createServer(onConnection);
      await listenOn(boundPort);
      listening = true;
    },
    reset() {
      for (const pair of [...pairs]) {
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
      }
    },
    async close() {
      for (const pair of [...pairs]) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await stopListening();
    },
  };
}
