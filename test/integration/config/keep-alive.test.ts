import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const script = fileURLToPath(new URL('./fixtures/started-bus.ts', import.meta.url));

it('a started bus on the memory transport keeps the process alive until it is stopped, then lets it exit', () => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 60_000 });
  expect(result.stderr).toBe('');
  // Without the keep-alive the process exits right after "started": the stop timer never fires.
  expect(result.stdout).toBe('started\nstopped\n');
  expect(result.status).toBe(0);
});
