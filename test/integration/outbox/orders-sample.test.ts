// Runs samples/orders (npm run sample:orders) as a user would, over the shared RabbitMQ and
// PostgreSQL (its outage is a proxy in front of PostgreSQL, not the server), and checks its summary.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { deleteTopology } from '../rabbitmq/rabbitmq-test-kit.js';
import { InvoiceIssued, OrderPlaced } from '../../../samples/orders/contracts.js';

const script = fileURLToPath(new URL('../../../samples/orders/main.ts', import.meta.url));

describe('the orders sample', () => {
  const run = `t${Math.random().toString(36).slice(2, 8)}`;
  afterAll(async () => {
    await deleteTopology([
      { address: `billing-${run}`, endpoint: `billing-${run}`, messageTypes: [OrderPlaced.type] },
      { address: `shipping-${run}`, endpoint: `shipping-${run}`, messageTypes: [InvoiceIssued.type] },
      { address: `orders-invoices-${run}`, endpoint: `orders-invoices-${run}`, messageTypes: [InvoiceIssued.type] },
    ]).catch(() => {});
  }, 60_000);

  it('stores and announces orders, rides out billing’s database outage, and ends with every order shipped once', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, run], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => {
      out += String(c);
    });
    child.stderr.on('data', (c) => {
      out += String(c);
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, out).toBe(0);
    const summary = /^SUMMARY (.*)$/m.exec(out)?.[1];
    expect(summary, out).toBeDefined();
    const result = JSON.parse(summary as string) as Record<string, number>;
    expect(result).toMatchObject({ orders: 10, invoices: 10, shipments: 10, deadLetters: 0 });
    // Once, or more if a probe came while the database was still away.
    expect(result.trips).toBeGreaterThanOrEqual(1);
    expect(out).toContain("billing's kill switch tripped");
  }, 180_000);
});
