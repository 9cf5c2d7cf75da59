import net from 'node:net';

/**
 * A TCP proxy for fault tests: forwards 127.0.0.1:<port> to a target, and on command
 * - `blackhole()`: stops forwarding in both directions without closing anything — a database that
 *   stops answering (packets dropped, no reset). Connections opened meanwhile are accepted and hang.
 *   `restore()` forwards again (what was held back flows, as TCP retransmission would deliver it).
 *   A side that closes its connection meanwhile closes the other side at once, so that sessions a
 *   test gives up on do not linger on the server holding locks.
 * - `refuse()`: stops listening: new connections are refused (ECONNREFUSED); `listen()` listens again.
 * - `reset()`: closes every open connection at once (ECONNRESET / "Connection terminated").
 * Used instead of disrupting a shared server: only the connections through the proxy are affected.
 */
export interface TcpProxy {
  readonly port: number;
  /** Open client connections through the proxy. */
  readonly connections: number;
  blackhole(): void;
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
}

export async function startTcpProxy(target: { host: string; port: number }, port = 0): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let holding = false;
  const release = (pair: Pair) => {
    for (const chunk of pair.toUpstream.splice(0)) pair.upstream.write(chunk);
    for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
  };
  const onConnection = (client: net.Socket) => {
    const upstream = net.connect(target);
    const pair: Pair = { client, upstream, toUpstream: [], toClient: [] };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // Read on while black-holed (holding the data back), so that a close is still seen.
    client.on('data', (chunk) => (holding ? pair.toUpstream.push(chunk) : upstream.write(chunk)));
    upstream.on('data', (chunk) => (holding ? pair.toClient.push(chunk) : client.write(chunk)));
    for (const socket of [client, upstream]) {
      socket.on('end', end);
      socket.on('close', end);
      socket.on('error', end);
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
    blackhole() {
      holding = true;
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
