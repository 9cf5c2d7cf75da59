// The orders sample: an orders HTTP API that stores an order and announces it with
// bus.transaction, a billing service that invoices it (inbox) and announces the invoice (outbox),
// and a shipping service; on RabbitMQ and PostgreSQL, each with its health endpoint. It drives a
// short scenario — orders, then a database outage of billing that its kill switch rides out, then
// more orders — and prints what happened. Run with `npm run sample:orders` (RabbitMQ on
// 127.0.0.1:5672 and PostgreSQL on 127.0.0.1:5432, database `test`, must be running).
//   npx tsx samples/orders/main.ts [run-id]
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { type Bus, TransportError } from '../../src/index.js';
import type { PostgresTransaction } from '../../src/inbox/postgres/index.js';
// The outage is made by a TCP proxy in front of PostgreSQL (billing's only way to its database):
// the shared server itself is never stopped. The proxy is the one the project's fault tests use.
import { startTcpProxy } from '../../test/infra/tcp-proxy.js';
import { applicationDdl, type Settings, schemaOf, startBilling, startOrders, startShipping } from './services.js';

const PG = { host: '127.0.0.1', port: 5432 };
const run = process.argv[2] ?? randomUUID().slice(0, 8);
const proxy = await startTcpProxy(PG);
const settings: Settings = {
  run,
  amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
  pgUrl: `postgres://postgres@${PG.host}:${PG.port}/test`,
  billingPgUrl: `postgres://postgres@127.0.0.1:${proxy.port}/test`,
};
const db = new pg.Pool({ connectionString: settings.pgUrl, max: 2 });
const say = (line: string) => console.log(line);
const table = (name: string) => `${schemaOf(settings)}.${name}`;
const count = async (name: string) =>
  Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table(name)}`)).rows[0]?.n ?? 0);

async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`the sample gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

await db.query(applicationDdl(settings));
const orders = await startOrders(settings);
const billing = await startBilling(settings);
const shipping = await startShipping(settings);
const buses: Bus<PostgresTransaction>[] = [orders.bus, billing, shipping];
say(`orders API on ${orders.url}; billing's health on ${billing.healthServer?.url}/health/endpoints`);

async function placeOrders(n: number, from: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const response = await fetch(`${orders.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customer: `customer-${from + i}`, total: 10 + from + i }),
    });
    if (response.status !== 201) throw new TransportError(`POST /orders answered ${response.status}`);
  }
}

try {
  say('1. five orders: stored and announced in one transaction each');
  await placeOrders(5, 1);
  await until('five shipments', async () => (await count('shipments')) === 5);
  say(`   orders ${await count('orders')}, invoices ${await count('invoices')}, shipments ${await count('shipments')}`);

  say("2. billing's database goes away (the proxy in front of it refuses and resets connections)");
  // Stop accepting first, then reset what is open (the refusal completes once nothing is open).
  const refusing = proxy.refuse();
  proxy.reset();
  await refusing;
  await placeOrders(5, 6);
  say('   five more orders placed: the orders API does not depend on billing');
  const billingEndpoint = `billing-${run}`;
  await until(
    "billing's kill switch to trip",
    () => billing.health().endpoints[billingEndpoint]?.killSwitch.state === 'tripped',
  );
  const tripped = billing.health().endpoints[billingEndpoint];
  say(
    `   billing's kill switch tripped: ${tripped?.killSwitch.reason ?? 'dependency failures'}; ` +
      `dead letters ${tripped?.counters.deadLettered}`,
  );
  const open = (await (await fetch(`${billing.healthServer?.url}/health/endpoints`)).json()) as {
    outbox?: { depth: number };
  };
  say(`   billing's health view answers meanwhile (outbox depth as last read: ${open.outbox?.depth ?? '?'})`);

  say('3. the database is back');
  await proxy.listen();
  await until('ten shipments', async () => (await count('shipments')) === 10, 90_000);
  const after = billing.health().endpoints[billingEndpoint];
  say(
    `   billing probed and closed its kill switch (state ${after?.killSwitch.state}, trips ${after?.killSwitch.trips}); ` +
      `dead letters ${after?.counters.deadLettered}`,
  );

  for (const bus of buses) await bus.outbox?.refresh();
  await until('the outboxes to be empty', async () => {
    for (const bus of buses) await bus.outbox?.refresh();
    return buses.every((b) => b.health().outbox?.depth === 0);
  });
  const [o, i, s] = [await count('orders'), await count('invoices'), await count('shipments')];
  say(`4. in the end: orders ${o}, invoices ${i}, shipments ${s}; every outbox empty; nothing dead-lettered`);
  say(
    `SUMMARY ${JSON.stringify({ orders: o, invoices: i, shipments: s, trips: after?.killSwitch.trips ?? 0, deadLetters: after?.counters.deadLettered ?? -1 })}`,
  );
} finally {
  orders.server.close();
  await Promise.allSettled(buses.map((b) => b.stop()));
  await db.query(`DROP SCHEMA IF EXISTS ${schemaOf(settings)} CASCADE`).catch(() => {});
  await db.end();
  await proxy.close();
}
