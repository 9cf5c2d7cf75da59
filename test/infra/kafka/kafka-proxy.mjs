// A TCP proxy in front of a private Kafka broker that can hold one request until the broker goes
// down: how a test makes "the broker restarted while a member was looking up its group coordinator
// during a join" (or "a join that never answers", or "a member that stops getting records in the
// middle of a read") happen every time instead of now and then. The broker advertises the proxy's
// address, so every client connection (bootstrap and after) goes through it. It forwards bytes both
// ways untouched; it only parses the client's request frames (int32 size, int16 api key, int16
// version, int32 correlation id, int16 client id length, client id) to find the one to hold.
// Used by private-kafka.mjs (`startPrivateKafka({ proxy: true })`).

import net from 'node:net';

const FETCH = 1;
const FIND_COORDINATOR = 10;
const JOIN_GROUP = 11;

/**
 * @param {{ host: string, port: number, upstreamPort: number }} options
 * @returns {Promise<{ port: number, holdNextFindCoordinator(clientId: string): Promise<void>, holdNextJoinGroup(clientId: string): Promise<void>, holdFetch(clientId: string, after?: number): Promise<void>, bytesTo(clientId: string): number, close(): Promise<void> }>}
 */
export async function startKafkaProxy({ host, port, upstreamPort }) {
  const sockets = new Set();
  /** @type {{ apiKey: number, clientId: string, skip: number, resolve: () => void } | undefined} */
  let trap;
  /** Bytes the broker sent to each client id's connections (a connection's id: its first request's; a kafkajs connection serves one client). */
  const received = new Map();

  const server = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect({ host, port: upstreamPort });
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    /** @type {string | undefined} */
    let id;
    upstream.on('data', (chunk) => {
      if (id !== undefined) received.set(id, (received.get(id) ?? 0) + chunk.length);
      client.write(chunk);
    });
    // Before the upstream connection is up, writes are buffered by the socket.
    let pending = Buffer.alloc(0);
    let holding = false;
    client.on('data', (chunk) => {
      if (holding) return; // the held request never goes out; nor does anything after it
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const size = pending.readInt32BE(0);
        if (pending.length < 4 + size) break;
        const frame = pending.subarray(0, 4 + size);
        pending = pending.subarray(4 + size);
        id ??= clientIdOf(frame);
        if (trap && frame.readInt16BE(4) === trap.apiKey && id === trap.clientId && trap.skip-- === 0) {
          holding = true;
          const { resolve } = trap;
          trap = undefined;
          resolve();
          return;
        }
        upstream.write(frame);
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const hold = (apiKey, clientId, skip = 0) =>
    new Promise((resolve) => {
      trap = { apiKey, clientId, skip, resolve };
    });
  return {
    port: server.address().port,
    /** Resolves once a FindCoordinator request of `clientId` arrived; it is held (never forwarded). */
    holdNextFindCoordinator(clientId) {
      return hold(FIND_COORDINATOR, clientId);
    },
    /** Resolves once a JoinGroup request of `clientId` arrived; it is held (never forwarded). */
    holdNextJoinGroup(clientId) {
      return hold(JOIN_GROUP, clientId);
    },
    /**
     * Resolves once the Fetch request of `clientId` that follows the next `after` ones (forwarded)
     * arrived; it is held (never forwarded): a member in the middle of reading stops getting records.
     */
    holdFetch(clientId, after = 0) {
      return hold(FETCH, clientId, after);
    },
    /** Bytes the broker has sent to the connections of `clientId` so far. */
    bytesTo(clientId) {
      return received.get(clientId) ?? 0;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function clientIdOf(frame) {
  // size(4) api_key(2) api_version(2) correlation_id(4) client_id: int16 length + bytes (-1 = null)
  if (frame.length < 14) return undefined;
  const length = frame.readInt16BE(12);
  if (length < 0 || frame.length < 14 + length) return undefined;
  return frame.toString('utf8', 14, 14 + length);
}
