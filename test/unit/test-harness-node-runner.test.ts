import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

/**
 * `sluice/testing` under node's own test runner (issue 17): the quickstart's node:test file passes
 * with `node --test`, no vitest in the process.
 */
it('runs the harness under `node --test`', async () => {
  const file = fileURLToPath(new URL('../../samples/quickstart/shipping.node-test.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk) => {
    out += String(chunk);
  });
  child.stderr.on('data', (chunk) => {
    out += String(chunk);
  });
  // A harness that kept the child alive would hang it: this bound only ends the test then.
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(killer);
  expect(out).toMatch(/# pass 2\n# fail 0/);
  expect(code).toBe(0);
}, 30_000);
