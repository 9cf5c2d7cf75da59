// The relay process of bench/outbox.ts: a bus with no endpoints on the bench's outbox table; prints
// "<message id> <epoch ms>" when the broker confirms each message it dispatches.
import { createBus } from '../src/index.js';
import { postgresInbox } from '../src/inbox/postgres/index.js';
import { PG_URL, SCHEMA, silent } from './outbox-kit.js';
import { timedRabbitmq } from './outbox-latency.js';

const timed = timedRabbitmq((id, at) => process.stdout.write(`${id} ${at}\n`));
const bus = createBus(
  {
    shutdown: { signals: ['SIGTERM'] },
    transport: { kind: 'rabbitmq' },
    inbox: { kind: 'postgres', connectionString: PG_URL, schema: SCHEMA, table: 'ob_inbox' },
    outbox: { table: 'ob_outbox', retentionMs: 0 },
  },
  { inbox: postgresInbox(), transports: [timed], logger: silent },
);
await bus.start();
process.stdout.write('READY\n');
