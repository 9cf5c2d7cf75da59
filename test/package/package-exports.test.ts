import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const packageJson = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, { types: string; import: string }>;
};
/** The source of a built file: `./dist/<path>.js` (or `.d.ts`) is `./<path>.ts`. */
const sourceOf = (built: string) => built.replace(/^\.\/dist\//, './').replace(/(\.d)?\.ts$|\.js$/, '.ts');

describe('package entry points', () => {
  it("tsconfig.json's paths resolve each entry point by name to the source of its built files", () => {
    const read = ts.readConfigFile(join(repo, 'tsconfig.json'), ts.sys.readFile);
    const paths = (read.config as { compilerOptions: { paths: Record<string, string[]> } }).compilerOptions.paths;
    const fromExports = Object.fromEntries(
      Object.entries(packageJson.exports).map(([subpath, target]) => {
        expect(sourceOf(target.types)).toBe(sourceOf(target.import));
        return [packageJson.name + subpath.slice(1), [sourceOf(target.import)]];
      }),
    );
    expect(paths).toEqual(fromExports);
  });
});

// The built package, as a user installs it: the build's output and package.json in a folder of its
// own, its dependencies beside it; imported by the package's own name, so through its `exports`.
describe('the conformance kit from the built package', () => {
  let dir = '';
  const run = (command: string, args: string[]) => {
    // Not the outer run's vitest worker settings: the inner vitest is a run of its own.
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST')));
    const result = spawnSync(process.execPath, [join(repo, 'node_modules', command), ...args], {
      cwd: dir,
      env,
      encoding: 'utf8',
      timeout: 150_000,
    });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-package-'));
    const build = run('typescript/bin/tsc', ['-p', join(repo, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')]);
    expect(build.output).toBe('');
    cpSync(join(repo, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir');
    cpSync(join(repo, 'test/package/built-kit.fixture.ts'), join(dir, 'test/kit.test.ts'));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
        },
        include: ['test'],
      }),
    );
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('type-checks a test file against the built declarations', () => {
    const check = run('typescript/bin/tsc', ['-p', join(dir, 'tsconfig.json')]);
    expect(check.output).toBe('');
    expect(check.status).toBe(0);
  });

  it('runs every case against the memory transport, reporting the ones it lacks a capability for as skipped', () => {
    const results = join(dir, 'results.json');
    const inner = run('vitest/vitest.mjs', [
      'run',
      '--root',
      dir,
      '--no-cache',
      '--reporter=json',
      `--outputFile=${results}`,
    ]);
    expect(inner.status, inner.output).toBe(0);
    const report = JSON.parse(readFileSync(results, 'utf8')) as {
      testResults: { assertionResults: { title: string; status: string }[] }[];
    };
    const tests = report.testResults.flatMap((file) => file.assertionResults);
    // Every case passed but these, which are reported as skipped, under names that say why.
    expect(tests.length).toBeGreaterThan(3);
    const notPassed = tests.filter((t) => t.status !== 'passed');
    expect(notPassed.map((t) => [t.title, t.status])).toEqual([
      [
        'redrives a dead letter back to its endpoint with the attempt count reset (skipped: lacks deadLetterManagement)',
        'skipped',
      ],
      [
        'scans every dead letter in pages, oldest first, without removing any (skipped: lacks deadLetterManagement)',
        'skipped',
      ],
      [
        'purges the oldest by limit and chosen ids, leaving the rest in order (skipped: lacks deadLetterManagement)',
        'skipped',
      ],
      [
        'redrives the oldest by limit and chosen ids (dead-letter or message ids), leaving the rest in order (skipped: lacks deadLetterManagement)',
        'skipped',
      ],
    ]);
  }, 150_000);
});
