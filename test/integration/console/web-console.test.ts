import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import amqp from 'amqplib';
import pino from 'pino';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type Bus,
  cloudEventsCodec,
  createBus,
  createEnvelope,
  defineMessage,
  memoryInbox,
} from '../../../src/index.js';
import { waitFor } from '../../support/wait-for.js';
import { RABBITMQ_URL, trackedRabbitmq } from '../rabbitmq/rabbitmq-test-kit.js';

/**
 * The web view in a real browser: Debian's Chromium (`apt-get install chromium`; `.ci/run` installs
 * it), driven headless by playwright-core, against a bus on RabbitMQ. Screenshots are kept in
 * `test-artifacts/console/` (git-ignored).
 */
const CHROMIUM = process.env.SLUICE_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = resolve('test-artifacts/console');
const ADMIN = `admin-${randomUUID()}`;
const ENDPOINT = `web-${randomUUID().slice(0, 8)}`;
const Shipment = defineMessage('console.shipment.v1', z.object({ n: z.number().int(), fail: z.boolean() }));
/** The explain page's entity: a parcel whose key and ids are hostile, on an endpoint with the ordering guard. */
const Parcel = defineMessage('console.parcel.v1', z.object({ weight: z.number() }));
const PARCELS = `${ENDPOINT}-parcels`;

// Hostile content: each payload would set window.__pwned if it ever ran.
const IMG = (n: number) => `<img src=x onerror="window.__pwned=${n}">`;
const SCRIPT = (n: number) => `<script>window.__pwned=${n}</script>`;

describe('the web console in Chromium', () => {
  const rabbit = trackedRabbitmq({});
  let bus: Bus;
  let browser: Browser;
  let page: Page;
  let base = '';
  let failing = true;
  let connection: amqp.ChannelModel;
  let shot = 0;
  /** The envelope id of the forged dead letter (its broker message id is hostile, IMG(5)). */
  let forgedId = '';
  const screenshot = async (name: string) => {
    const path = `${ARTIFACTS}/${String(++shot).padStart(2, '0')}-${name}.png`;
    await page.screenshot({ path, fullPage: true });
  };

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set SLUICE_CHROMIUM)`);
    }
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    process.stdout.write(`web console screenshots: ${ARTIFACTS}\n`);
    bus = createBus(
      {
        service: 'web-console-test',
        transport: { ...rabbit.config, kind: 'rabbitmq' },
        health: { enabled: true, port: 0, token: ADMIN },
        shutdown: { signals: [], timeoutMs: 2_000 },
        history: { enabled: true },
      },
      { transports: [rabbit.definition], inbox: memoryInbox(), logger: pino({ level: 'silent' }) },
    );
    bus
      .endpoint(PARCELS, { retry: { kind: 'none' }, killSwitch: { enabled: false }, ordering: { enabled: true } })
      .handle(Parcel, async () => {});
    bus.endpoint(ENDPOINT, { retry: { kind: 'none' }, killSwitch: { enabled: false } }).handle(Shipment, async (s) => {
      if (s.fail && failing) throw new TypeError(`carrier API refused shipment ${s.n}`);
    });
    await bus.start();
    base = `${bus.healthServer?.url}/health/console/`;
    for (let n = 1; n <= 4; n++) await bus.send(ENDPOINT, Shipment, { n, fail: true }, { key: `shipment-${n}` });
    connection = await amqp.connect(RABBITMQ_URL);
    const channel = await connection.createConfirmChannel();
    // Bytes that are not an event at all: the service dead-letters them as undecodable.
    channel.sendToQueue(ENDPOINT, Buffer.from(`${IMG(1)}${SCRIPT(2)}`), { messageId: 'raw-hostile' });
    // A dead letter whose every field is hostile, as a forged fault could leave it.
    const e = createEnvelope('console.shipment.v1', 'hostile', { n: 0, fail: false, note: SCRIPT(3) }, { key: IMG(4) });
    forgedId = e.id;
    channel.sendToQueue(`${ENDPOINT}.dlq`, cloudEventsCodec.encode(e), {
      messageId: IMG(5),
      headers: {
        'sluice-fault-reason': IMG(6),
        'sluice-fault-description': SCRIPT(7),
        'sluice-fault-error-name': '<b>Bold</b>',
        'sluice-fault-error-message': `${IMG(8)} for key ${IMG(4)}`,
        'sluice-dead-letter-id': `"><script>window.__pwned=9</script>`,
        'x-hostile': `"><svg onload="window.__pwned=10">`,
      },
    });
    await channel.waitForConfirms();
    await channel.close();
    await waitFor(async () => (await bus.deadLetters(ENDPOINT).count()) === 6, {
      timeoutMs: 20_000,
      what: '6 dead letters',
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(10_000);
    page.on('dialog', (dialog) => void dialog.accept());
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await bus?.stop();
    await connection?.close().catch(() => {});
    await rabbit.cleanup();
  });

  const noScriptRan = async () => {
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    expect(await page.locator('main img, main svg, main script, main b').count()).toBe(0);
  };

  it('asks for the token, then shows the endpoints; trips and resets a kill switch', async () => {
    await page.goto(base);
    await expect(page.locator('main').textContent()).resolves.toContain('Enter a read or admin token');
    await page.fill('#token', ADMIN);
    await page.click('#token-use');
    const row = page.locator(`tr[data-endpoint="${ENDPOINT}"]`);
    await row.waitFor();
    expect(await row.locator('[data-field=kill-switch]').textContent()).toContain('closed');
    // The bus has an inbox, so an outbox: its depth and lag above the endpoints.
    await expect(page.locator('[data-field=outbox]').textContent()).resolves.toMatch(
      /^Outbox: \d+ waiting · oldest \d+\.\d s · 0 moved aside$/,
    );
    await row.locator('input').fill(`maintenance ${IMG(11)}`);
    await row.locator('[data-action=trip]').click();
    await page.locator(`tr[data-endpoint="${ENDPOINT}"] [data-field=kill-switch]:has-text("tripped")`).waitFor();
    expect(bus.killSwitch(ENDPOINT).state).toBe('tripped');
    expect(await row.locator('[data-field=kill-switch]').textContent()).toContain(`maintenance ${IMG(11)}`);
    await noScriptRan();
    await screenshot('endpoints-tripped');
    await row.locator('[data-action=reset]').click();
    await page.locator(`tr[data-endpoint="${ENDPOINT}"] [data-field=kill-switch]:has-text("closed")`).waitFor();
    expect(bus.killSwitch(ENDPOINT).state).toBe('closed');
    // The token stays in this tab's sessionStorage, never in a cookie.
    expect(await page.context().cookies()).toEqual([]);
  });

  it('groups dead letters by reason and failure, and shows hostile ones as text', async () => {
    await page.locator(`tr[data-endpoint="${ENDPOINT}"] a[href$="/dead-letters"]`).click();
    await page.locator('h2[data-reason="retries-exhausted"]').waitFor();
    expect(await page.locator('h2[data-reason="retries-exhausted"]').textContent()).toBe('retries-exhausted · 4');
    expect(await page.locator('main').textContent()).toContain('carrier API refused shipment <n>');
    // The forged reason is a heading's text, and its group's failure a link's text.
    expect(await page.locator('main h2').allTextContents()).toContain(`${IMG(6)} · 1`);
    await noScriptRan();
    await screenshot('dead-letter-groups');

    // Its failure text is folded like any other (quoted values, numbers), markup and all.
    const forged = page
      .locator('table')
      .nth(await tableIndexOf(IMG(6)))
      .locator('a')
      .first();
    expect(await forged.textContent()).toBe('<img src=x onerror="…"> for key <img src=x onerror="…">');
    await forged.click();
    await page.locator('main table').first().waitFor();
    const hostileRow = page.locator('tr[data-dead-letter]');
    expect(await hostileRow.getAttribute('data-dead-letter')).toBe('"><script>window.__pwned=9</script>');
    await hostileRow.locator('a').click();
    const body = page.locator('pre[data-field=body]');
    await body.waitFor();
    expect(await body.textContent()).toContain(`"note": "${SCRIPT(3).replaceAll('"', '\\"')}"`);
    const text = (await page.locator('main').textContent()) ?? '';
    for (const literal of [IMG(5), IMG(6), SCRIPT(7), '<b>Bold</b>', `"><svg onload="window.__pwned=10">`]) {
      expect(text).toContain(literal);
    }
    await noScriptRan();
    await screenshot('hostile-dead-letter');

    // The bytes that were not an event: text as they came, never markup.
    await page.goto(`${base}#/endpoints/${ENDPOINT}/dead-letters`);
    await page.locator('h2[data-reason="undecodable"]').waitFor();
    const undecodable = page
      .locator('table')
      .nth(await tableIndexOf('undecodable'))
      .locator('a')
      .first();
    await undecodable.click();
    await page.locator('tr[data-dead-letter] a').first().click();
    await body.waitFor();
    expect(await body.textContent()).toBe(`${IMG(1)}${SCRIPT(2)}`);
    await noScriptRan();
  });

  it('redrives a group with progress, and purges one after confirming its count', async () => {
    failing = false; // the carrier is back: the redriven shipments now succeed
    await page.goto(`${base}#/endpoints/${ENDPOINT}/dead-letters`);
    const heading = page.locator('h2[data-reason="retries-exhausted"]');
    await heading.waitFor();
    const group = page
      .locator('table')
      .nth(await tableIndexOf('retries-exhausted'))
      .locator('tr[data-group]');
    await group.locator('input').fill('carrier back');
    await group.locator('[data-action=redrive]').click();
    await page.locator('[data-field=job-state]:has-text("succeeded")').waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-field=job-progress]').textContent()).toBe(
      '4 of 4 handled · 4 moved · 0 no longer there',
    );
    await screenshot('redrive-job');
    await waitFor(async () => bus.health().endpoints[ENDPOINT]?.counters.completed === 4, {
      what: 'redriven and handled',
    });
    expect(await bus.deadLetters(ENDPOINT).count()).toBe(2);

    await page.goto(`${base}#/endpoints/${ENDPOINT}/dead-letters`);
    await page.locator('h2[data-reason="undecodable"]').waitFor();
    const hostile = page
      .locator('table')
      .nth(await tableIndexOf('undecodable'))
      .locator('tr[data-group]');
    await hostile.locator('[data-action=purge]').click();
    await page.locator('[data-field=job-state]:has-text("succeeded")').waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-field=job-progress]').textContent()).toBe(
      '1 of 1 handled · 1 removed · 0 no longer there',
    );
    expect(await bus.deadLetters(ENDPOINT).count()).toBe(1);
    await noScriptRan();
  });

  it('explains a key: its timeline as a table, every hostile key, id, type and reason shown as text', async () => {
    const key = IMG(12);
    const at = (s: number) => `2026-11-30T10:00:0${s}Z`;
    const parcel = async (id: string, s: number, weight: number) =>
      bus.send(PARCELS, Parcel, { weight }, { id, key, occurredAt: at(s) });
    await parcel(SCRIPT(13), 1, 1);
    await parcel('p-3', 3, 3);
    await parcel(`p-2 ${IMG(14)}`, 2, 2);
    // Breaks the contract (weight must be a number): dead-lettered as a schema violation.
    const bad = createEnvelope(Parcel.type, 'hostile', { weight: SCRIPT(15) }, { id: 'p-4', key, occurredAt: at(4) });
    const channel = await connection.createConfirmChannel();
    channel.sendToQueue(PARCELS, cloudEventsCodec.encode(bad), { messageId: 'p-4' });
    await channel.waitForConfirms();
    await channel.close();
    await waitFor(async () => (await bus.explain(key)).entries.length === 4, { timeoutMs: 20_000, what: '4 entries' });

    await page.goto(`${base}#/explain`);
    await page.fill('#explain-key', key);
    await page.click('#explain-form button[type=submit]');
    await page.locator('tr[data-outcome]').nth(3).waitFor();
    expect(await page.locator('#explain-current-key').textContent()).toBe(key);
    const rows = page.locator('tr[data-outcome]');
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-outcome')))).toEqual([
      'applied',
      'applied',
      'stale',
      'dead-lettered',
    ]);
    expect(await rows.nth(0).getAttribute('data-message-id')).toBe(SCRIPT(13));
    expect(await rows.nth(2).locator('[data-field=summary]').textContent()).toBe(
      `skipped: stale — occurred ${at(2)}, key already at ${at(3)} from message p-3`,
    );
    expect(await rows.nth(3).locator('[data-field=hint]').textContent()).toBe(
      'p-4 is dead-lettered: schema-violation; redrive it to continue',
    );
    expect(await page.locator(`#explain-guard li[data-endpoint="${PARCELS}"]`).textContent()).toBe(
      `${PARCELS}: at ${at(3)} by message p-3`,
    );
    const text = (await page.locator('main').textContent()) ?? '';
    for (const literal of [key, SCRIPT(13), `p-2 ${IMG(14)}`]) expect(text).toContain(literal);
    await noScriptRan();
    await screenshot('explain');

    // A key known only from a dead letter in the queue (the forged one): shown, as text, with the hint.
    await page.goto(`${base}#/explain/${encodeURIComponent(IMG(4))}`);
    await page.locator(`tr[data-message-id="${forgedId}"]`).waitFor();
    expect(await page.locator('#explain-current-key').textContent()).toBe(IMG(4));
    expect(await page.locator('tr[data-outcome]').count()).toBe(1);
    expect(await page.locator('[data-field=hint]').textContent()).toBe(
      `${forgedId} is dead-lettered: ${IMG(6)}; redrive it to continue`,
    );
    expect(await page.locator('[data-field=summary]').textContent()).toContain(SCRIPT(7));
    await noScriptRan();
  });

  /** The index among the page's tables of the one under a reason's heading. */
  const tableIndexOf = async (reason: string): Promise<number> =>
    (await page.evaluate(`(() => {
      const tables = [...document.querySelectorAll('main table')];
      const heading = document.querySelector('h2[data-reason="' + CSS.escape(${JSON.stringify(reason)}) + '"]');
      return tables.findIndex((t) => t.previousElementSibling === heading);
    })()`)) as number;
});
