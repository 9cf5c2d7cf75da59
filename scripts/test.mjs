#!/usr/bin/env node
// `npm test`: start the real servers the tests need (failing if one cannot start: no broker is
// ever skipped), typecheck (type tests live in the typecheck), check the layer rule
// (scripts/check-layers.mjs, also part of `npm run lint`), then run every vitest suite and close
// with one plain summary line.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { ensureServices } from '../test/infra/services.mjs';

const results = '.vitest-results.json';
const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit' }).status ?? 1;

try {
  await ensureServices();
} catch (error) {
  process.stderr.write(
    `\nA server the tests need is not available: ${error instanceof Error ? error.message : error}\n`,
  );
  process.exit(1);
}
const typecheck = run('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
if (typecheck !== 0) process.exit(typecheck);
const layers = run(process.execPath, ['scripts/check-layers.mjs']);
if (layers !== 0) process.exit(layers);

rmSync(results, { force: true });
const status = run('npx', [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${results}`,
  ...process.argv.slice(2),
]);
try {
  const summary = JSON.parse(readFileSync(results, 'utf8'));
  const skipped = (summary.numPendingTests ?? 0) + (summary.numTodoTests ?? 0);
  process.stdout.write(
    `\nvitest: ${summary.numPassedTests} passed, ${summary.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}\n`,
  );
} catch {
  process.stdout.write('\nvitest: no results were written\n');
}
process.exit(status);
