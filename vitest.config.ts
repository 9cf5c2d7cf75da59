import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The package's own entry points by name (`sluice/testing/conformance`), as a user imports them,
// resolved to their sources: each `exports` entry's built file (`./dist/<path>.js`) is `./<path>.ts`.
// tsconfig.json's `paths` say the same to the type checker (test/package/package-exports.test.ts
// checks that the two agree).
const packageJson = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as {
  name: string;
  exports: Record<string, { import: string }>;
};
const ownEntryPoints = Object.entries(packageJson.exports).map(([subpath, target]) => ({
  find: new RegExp(`^${(packageJson.name + subpath.slice(1)).replaceAll('/', '\\/')}$`),
  replacement: fileURLToPath(
    new URL(target.import.replace(/^\.\/dist\//, './').replace(/\.js$/, '.ts'), import.meta.url),
  ),
}));

// Two groups: everything in parallel first, then the tests that disrupt a shared broker (a RabbitMQ
// restart) alone, so they never break another file's run.
export default defineConfig({
  resolve: { alias: ownEntryPoints },
  test: {
    testTimeout: 30_000,
    globalSetup: ['test/support/global-setup.ts'],
    hookTimeout: 180_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'default',
          // The samples' own tests run too (samples/quickstart/shipping.test.ts).
          include: ['test/**/*.test.ts', 'samples/**/*.test.ts'],
          exclude: ['test/**/*.serial.test.ts'],
          fileParallelism: true,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'serial',
          include: ['test/**/*.serial.test.ts'],
          fileParallelism: false,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
