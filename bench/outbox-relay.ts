// The relay process of bench/outbox.ts: a bus with no endpoints on the bench's outbox table; prints
// "<message id> <epoch ms>" when the broker confirms each message it dispatches.
import pino from 'pino';
import { createBus, type TransportDefinition } from '../src/index.js';
import { postgresInbox } from '../src/inbox/postgres/index.js';
import { rabbitmqTransport } from '../transports/rabbitmq/index.js';

const base = rabbitmqTransport() as TransportDefinition;
const timed: TransportDefinition = {
  ...base,
  create(config, deps) {
    const t = base.create(config, deps);
    const publish = t.publish.bind(t);
    t.publish = async (m) => {
      await publish(m);
      process.stdout.write(`${m.messageId} ${performance.timeOrigin + performance.now()}\n`);
    };
    return t;
  },
};
const bus = createBus(
  {
    shutdown: { signals: ['SIGTERM'] },
    transport: { kind: 'rabbitmq' },
    inbox: {
      kind: 'postgres',
      connectionString: 'postgres://postgres@127.0.0.1:5432/test',
      schema: 'sluice_bench',
      table: 'ob_inbox',
    },
    outbox: { table: 'ob_outbox', retentionMs: 0 },
  },
  { inbox: postgresInbox(), transports: [timed], logger: pino({ level: 'silent' }) },
);
await bus.start();
process.stdout.write('READY\n');
