import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { type PrivateRabbitmq, startPrivateRabbitmq } from '../infra/rabbitmq/private-rabbitmq.js';
import { waitFor } from '../support/wait-for.js';
import { FaultBench } from './fault-bench.js';

/**
 * RabbitMQ's application stopped (`rabbitmqctl stop_app`) and started again under load (issue 19's
 * fault suite), on a private node of this file — never the shared node on 5672. Half the messages
 * are sent before, half from the moment the broker is down: the producer keeps sending through the
 * outage (a send the broker refused or could not confirm is sent again, same id). The consumer's
 * PostgreSQL inbox is on the shared server, which nothing touches.
 *
 * The kill switch must NOT trip here: a broker outage does not reach the handler path. Every
 * connection drops, so deliveries stop (the consumer waits, reconnecting); handlers that were
 * running commit in PostgreSQL, and their acknowledgements are lost with the channel, so the broker
 * redelivers those messages and the inbox skips them as duplicates. Nothing fails in a handler,
 * and no outcome reaches the switch as a failure; pausing the endpoint would change nothing, since
 * there is nothing to consume. What the operator sees is the transport `reconnecting` (readiness
 * not-ready), then `connected` again.
 */
describe('fault: RabbitMQ stop_app / start_app under load', () => {
  let node: PrivateRabbitmq | undefined;
  let bench: FaultBench | undefined;
  beforeAll(async () => {
    node = await startPrivateRabbitmq();
  }, 180_000);
  afterEach(async () => {
    await bench?.close();
    bench = undefined;
  }, 60_000);
  afterAll(async () => {
    await node?.remove();
  }, 60_000);

  for (const queueType of ['quorum', 'classic'] as const) {
    it(`${queueType} queues: a 6 s outage loses nothing, applies nothing twice, dead-letters only poison`, async () => {
      const broker = node as PrivateRabbitmq;
      bench = await FaultBench.start({
        transport: { kind: 'rabbitmq', url: broker.url, queueType },
        database: 'shared',
      });
      const b = bench;
      await b.brokerFault(`rabbitmq stop_app (${queueType})`, {
        total: 2_000,
        downMs: 6_000,
        async stop() {
          await broker.stopApp();
          await waitFor(() => b.bus.health().transport.state === 'reconnecting', {
            timeoutMs: 15_000,
            what: 'the transport to notice the outage',
          });
        },
        async start() {
          await broker.startApp();
          await waitFor(() => b.bus.health().transport.state === 'connected', {
            timeoutMs: 30_000,
            what: 'reconnected',
          });
        },
      });
    }, 90_000);
  }
});
