import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

// The layer rule as CI runs it (`node scripts/check-layers.mjs`, in `npm run lint` and `npm test`):
// it passes this repository's tree, and it names the file, the import and the rule each fixture
// tree breaks.
const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const script = join(root, 'scripts/check-layers.mjs');

function check(at?: string): { status: number | null; out: string } {
  const run = spawnSync(process.execPath, [script, ...(at ? ['--root', at] : [])], { encoding: 'utf8' });
  return { status: run.status, out: run.stdout + run.stderr };
}

const fixtures: string[] = [];
/** A tree of files (path → text) in a fresh temporary directory. */
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-layers-'));
  fixtures.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

afterEach(() => {
  for (const dir of fixtures.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the layer rule (scripts/check-layers.mjs)', () => {
  it('passes the repository', () => {
    const { status, out } = check();
    expect(out).toContain('every import follows the ranking');
    expect(status).toBe(0);
  });

  it('passes an import of a lower folder and of its own folder', () => {
    const at = tree({
      'src/internal/clock.ts': 'export const now = () => 0;\n',
      'src/errors/fault.ts': "import { now } from '../internal/clock.js';\nexport const at = now();\n",
      'src/bus/bus.ts': "import { at } from '../errors/fault.js';\nimport { x } from './x.js';\nexport { at, x };\n",
      'src/bus/x.ts': 'export const x = 1;\n',
    });
    expect(check(at)).toEqual({ status: 0, out: expect.stringContaining('every import follows the ranking') });
  });

  it('names the file, the import and the rule of an upward import', () => {
    const at = tree({
      'src/telemetry/redact.ts': 'export const redact = (s: string) => s;\n',
      'src/errors/fault.ts': "// a fault\nimport { redact } from '../telemetry/redact.js';\nexport const r = redact;\n",
    });
    const { status, out } = check(at);
    expect(status).toBe(1);
    // The ranks are positions in RANKING: the test names the folders, not the numbers.
    expect(out).toMatch(
      /^src\/errors\/fault\.ts:2: imports '\.\.\/telemetry\/redact\.js': layer rule: src\/errors \(rank \d+\) imports only folders ranked below it; src\/telemetry is rank \d+$/m,
    );
  });

  it('catches a type-only import, a re-export and an import() type alike', () => {
    const at = tree({
      'src/bus/bus.ts': 'export interface BusHealth { readonly state: string }\n',
      'src/health/a.ts': "import type { BusHealth } from '../bus/bus.js';\nexport type A = BusHealth;\n",
      'src/health/b.ts': "export type { BusHealth } from '../bus/bus.js';\n",
      'src/health/c.ts': "export type C = import('../bus/bus.js').BusHealth;\n",
    });
    const { status, out } = check(at);
    expect(status).toBe(1);
    for (const file of ['a', 'b', 'c']) expect(out).toContain(`src/health/${file}.ts:1: imports '../bus/bus.js'`);
  });

  it('keeps transports on the contract, src off the transports, and broker clients in their homes', () => {
    const at = tree({
      'src/transport-core/index.ts': 'export const contract = 1;\n',
      'src/transport-core/headers.ts': 'export const h = 1;\n',
      'transports/kafka/index.ts':
        "import { contract } from '../../src/transport-core/index.js';\nimport { h } from '../../src/transport-core/headers.js';\nexport { contract, h };\n",
      'src/bus/create-bus.ts': "import { contract } from '../../transports/kafka/index.js';\nexport { contract };\n",
      'src/bus/create-bus-from-config.ts': "export const load = () => import('../../transports/kafka/index.js');\n",
      'src/bus/client.ts': "import { Kafka } from 'kafkajs';\nexport { Kafka };\n",
      'src/somewhere/new.ts': 'export const n = 1;\n',
    });
    const { status, out } = check(at);
    expect(status).toBe(1);
    expect(out).toContain(
      "transports/kafka/index.ts:2: imports '../../src/transport-core/headers.js': a transport (transports/kafka/) imports only its own folder and src/transport-core/index.ts",
    );
    expect(out).not.toContain('transports/kafka/index.ts:1');
    expect(out).toContain(
      "src/bus/create-bus.ts:1: imports '../../transports/kafka/index.js': src imports no file of transports/",
    );
    expect(out).not.toContain('src/bus/create-bus-from-config.ts:');
    expect(out).toContain("src/bus/client.ts:1: imports 'kafkajs': kafkajs is imported only in transports/kafka/");
    expect(out).toContain('src/somewhere/new.ts: src/somewhere has no rank');
  });
});
