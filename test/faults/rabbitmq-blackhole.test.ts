import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { type PrivateRabbitmq, startPrivateRabbitmq } from '../infra/rabbitmq/private-rabbitmq.js';
import { waitFor } from '../support/wait-for.js';
import { FaultBench } from './fault-bench.js';

/** The AMQP heartbeat here: the client gives the hung node up after about twice this. */
const HEARTBEAT_SECONDS = 2;

/**
 * RabbitMQ hangs under load (the black hole of the fault suite): the node's Erlang VM is frozen
 * (SIGSTOP), so connections stay open, the kernel still accepts new ones, and nothing answers — no
 * reset, no refusal. On a private node of this file, never the shared node on 5672.
 *
 * The hang is longer than twice the heartbeat (the client drops the connection) and than the
 * publish timeout (5 s: a send waiting for its confirm fails and is sent again). Reconnection attempts made
 * while the node is frozen may wait for it (this test does not tell): that an attempt against a
 * broker that never answers fails within `connectTimeoutMs`, and that a close does, is
 * `test/integration/rabbitmq/credentials-and-reconnect.test.ts`. Nothing may be lost, applied twice or
 * dead-lettered for it; the kill switch must not trip (no handler fails); the transport is
 * `reconnecting` while it lasts and `connected` after; and `bus.stop()` returns in its time while
 * the node is still hung.
 */
describe('fault: RabbitMQ hangs (SIGSTOP)', () => {
  let node: PrivateRabbitmq | undefined;
  let bench: FaultBench | undefined;
  beforeAll(async () => {
    node = await startPrivateRabbitmq();
  }, 180_000);
  afterEach(async () => {
    node?.thaw();
    await bench?.close();
    bench = undefined;
  }, 60_000);
  afterAll(async () => {
    await node?.remove();
  }, 60_000);

  const transport = () => ({
    kind: 'rabbitmq' as const,
    url: (node as PrivateRabbitmq).url,
    heartbeatSeconds: HEARTBEAT_SECONDS,
  });

  it('hung for 10 s under load: loses nothing, applies nothing twice, dead-letters only poison', async () => {
    const broker = node as PrivateRabbitmq;
    bench = await FaultBench.start({ transport: transport(), database: 'shared' });
    const b = bench;
    await b.brokerFault('rabbitmq hung (SIGSTOP 10 s)', {
      total: 2_000,
      downMs: 10_000,
      async stop() {
        broker.freeze();
        await waitFor(() => b.bus.health().transport.state === 'reconnecting', {
          timeoutMs: 15_000,
          what: 'the heartbeat to give the hung node up',
        });
      },
      async start() {
        broker.thaw();
        await waitFor(() => b.bus.health().transport.state === 'connected', { timeoutMs: 30_000, what: 'reconnected' });
      },
    });
  }, 120_000);

  it('bus.stop() returns in its time while the node is hung, and what it left is delivered again', async () => {
    const broker = node as PrivateRabbitmq;
    bench = await FaultBench.start({ transport: transport(), database: 'shared' });
    // Once the node runs again it sees the stopped consumer's connection gone and puts back what it
    // had not acknowledged; a new consumer applies what was left, the inbox skips what was applied.
    //
    const tookMs = await bench.stopWhileHung(broker, { total: 600 });
    console.info(`rabbitmq hung: bus.stop() took ${tookMs} ms`);
  }, 120_000);
});
