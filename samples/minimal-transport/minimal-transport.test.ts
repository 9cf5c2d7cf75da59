// Runs the sample transport's conformance file (`minimal-transport.kit.ts`, what a transport author
// writes) in a vitest run of its own and reads its report: every case the transport has the
// capabilities for passes; the five it lacks are reported as skipped, named with what they lack.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const here = fileURLToPath(new URL('./', import.meta.url));
const repo = join(here, '../..');

it('passes the conformance kit, the cases it lacks a capability for reported as skipped', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-minimal-transport-'));
  try {
    const results = join(dir, 'results.json');
    // Not the outer run's vitest worker settings: the inner vitest is a run of its own.
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST')));
    const inner = spawnSync(
      process.execPath,
      [
        join(repo, 'node_modules/vitest/vitest.mjs'),
        'run',
        '--config',
        join(here, 'vitest.config.ts'),
        '--no-cache',
        '--reporter=json',
        `--outputFile=${results}`,
      ],
      { cwd: repo, env, encoding: 'utf8', timeout: 120_000 },
    );
    expect(inner.status, `${inner.stdout}${inner.stderr}`).toBe(0);
    const report = JSON.parse(readFileSync(results, 'utf8')) as {
      testResults: { assertionResults: { title: string; status: string }[] }[];
    };
    const tests = report.testResults.flatMap((file) => file.assertionResults);
    const skipped = tests.filter((t) => t.status === 'skipped').map((t) => t.title);
    expect(skipped.sort()).toEqual(
      [
        'routes a publish to every endpoint bound to its type (skipped: lacks publish)',
        'redrives a dead letter back to its endpoint with the attempt count reset (skipped: lacks deadLetterManagement)',
        'scans every dead letter in pages, oldest first, without removing any (skipped: lacks deadLetterManagement)',
        'purges the oldest by limit and chosen ids, leaving the rest in order (skipped: lacks deadLetterManagement)',
        'redrives the oldest by limit and chosen ids (dead-letter or message ids), leaving the rest in order (skipped: lacks deadLetterManagement)',
      ].sort(),
    );
    const others = tests.filter((t) => t.status !== 'skipped');
    expect(others.length).toBeGreaterThan(10);
    expect(others.filter((t) => t.status !== 'passed')).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 150_000);
