// The three services of the orders sample. Each is a bus with a PostgreSQL inbox and outbox on
// RabbitMQ; their tables live in one schema, each service with its own inbox and outbox tables.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { type Bus, createBus } from '../../src/index.js';
import { postgresInbox, type PostgresTransaction } from '../../src/inbox/postgres/index.js';
import { rabbitmqTransport } from '../../transports/rabbitmq/index.js';
import { InvoiceIssued, OrderPlaced } from './contracts.js';

export interface Settings {
  /** Suffixes the schema and the endpoints' queues, so that runs never share them. */
  readonly run: string;
  readonly amqpUrl: string;
  /** How the orders API and shipping reach PostgreSQL. */
  readonly pgUrl: string;
  /** How billing reaches PostgreSQL: through a proxy the scenario cuts to make an outage. */
  readonly billingPgUrl: string;
}

export const schemaOf = (s: Settings) => `orders_sample_${s.run}`;
const quiet = pino({ level: 'silent' });

function serviceBus(s: Settings, service: string, pgUrl: string, extra: object = {}): Bus<PostgresTransaction> {
  return createBus(
    {
      service,
      transport: { kind: 'rabbitmq', url: s.amqpUrl, reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 } },
      shutdown: { signals: [], timeoutMs: 2_000 },
      inbox: {
        kind: 'postgres',
        connectionString: pgUrl,
        schema: schemaOf(s),
        table: `${service}_inbox`,
        connectTimeoutMs: 1_000,
        statementTimeoutMs: 2_000,
      },
      outbox: { table: `${service}_outbox`, backupPollIntervalMs: 1_000 },
      ...extra,
    },
    { inbox: postgresInbox(), transports: [rabbitmqTransport()], logger: quiet },
  );
}

/**
 * The orders API: `POST /orders {customer, total}` stores the order and announces it in one
 * transaction (`bus.transaction`): the announcement leaves only if the order was stored.
 */
export async function startOrders(
  s: Settings,
): Promise<{ bus: Bus<PostgresTransaction>; url: string; server: Server }> {
  const bus = serviceBus(s, 'orders', s.pgUrl, { health: { enabled: true, port: 0 } });
  // A bus needs an endpoint to start; the orders service also hears back from billing.
  bus.endpoint(`orders-invoices-${s.run}`, { inbox: false }).handle(InvoiceIssued, async () => {});
  await bus.start();
  const table = `${schemaOf(s)}.orders`;
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/orders') {
      res.writeHead(404).end();
      return;
    }
    let body = '';
    req.on('data', (chunk) => {
      body += String(chunk);
    });
    req.on('end', () => {
      void (async () => {
        try {
          const { customer, total } = JSON.parse(body) as { customer: string; total: number };
          const orderId = await bus.transaction(async ({ tx, publish }) => {
            const id = `o-${randomUUID().slice(0, 8)}`;
            await tx.query(`INSERT INTO ${table} (order_id, customer, total) VALUES ($1, $2, $3)`, [
              id,
              customer,
              total,
            ]);
            await publish(OrderPlaced, { orderId: id, customer, total }, { key: id });
            return id;
          });
          res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ orderId }));
        } catch (error) {
          res.writeHead(500, { 'content-type': 'text/plain' }).end((error as Error).message);
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { bus, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Billing: invoices each order once (inbox) and announces the invoice through the outbox. */
export async function startBilling(s: Settings): Promise<Bus<PostgresTransaction>> {
  const bus = serviceBus(s, 'billing', s.billingPgUrl, { health: { enabled: true, port: 0 } });
  const table = `${schemaOf(s)}.invoices`;
  bus
    .endpoint(`billing-${s.run}`, {
      concurrency: 4,
      // Its database is its dependency: a few failures in a row pause the endpoint, which probes again soon.
      killSwitch: { dependencyFailures: 3, restartDelayMs: { initial: 1_000, factor: 2, max: 4_000 } },
      dependencyBackoffMs: { initial: 200, factor: 2, max: 2_000 },
    })
    .handle(OrderPlaced, async (order, ctx) => {
      const invoiceId = `inv-${order.orderId.slice(2)}`;
      await ctx.tx.query(`INSERT INTO ${table} (invoice_id, order_id, amount) VALUES ($1, $2, $3)`, [
        invoiceId,
        order.orderId,
        order.total,
      ]);
      await ctx.publish(
        InvoiceIssued,
        { orderId: order.orderId, invoiceId, amount: order.total },
        { key: order.orderId },
      );
    });
  await bus.start();
  return bus;
}

/** Shipping: ships each invoiced order once (inbox). */
export async function startShipping(s: Settings): Promise<Bus<PostgresTransaction>> {
  const bus = serviceBus(s, 'shipping', s.pgUrl, { health: { enabled: true, port: 0 } });
  const table = `${schemaOf(s)}.shipments`;
  bus.endpoint(`shipping-${s.run}`, { concurrency: 4 }).handle(InvoiceIssued, async (invoice, ctx) => {
    await ctx.tx.query(`INSERT INTO ${table} (order_id, invoice_id) VALUES ($1, $2)`, [
      invoice.orderId,
      invoice.invoiceId,
    ]);
  });
  await bus.start();
  return bus;
}

/** The services' own tables (the inboxes and outboxes are created by Sluice on start). */
export function applicationDdl(s: Settings): string {
  const schema = schemaOf(s);
  return `CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${schema}.orders (order_id text PRIMARY KEY, customer text NOT NULL, total numeric NOT NULL);
CREATE TABLE IF NOT EXISTS ${schema}.invoices (invoice_id text PRIMARY KEY, order_id text NOT NULL UNIQUE, amount numeric NOT NULL);
CREATE TABLE IF NOT EXISTS ${schema}.shipments (order_id text PRIMARY KEY, invoice_id text NOT NULL);`;
}
