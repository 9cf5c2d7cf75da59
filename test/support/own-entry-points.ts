import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The package's own entry points by name (`sluice/testing/conformance`), as a user imports them,
// resolved to their sources: each `exports` entry's built file (`./dist/<path>.js`) is `./<path>.ts`.
// tsconfig.json's `paths` say the same to the type checker (test/package/package-exports.test.ts
// checks that the two agree). Used by vitest.config.ts and by the sample transport's own run.
const root = new URL('../../', import.meta.url);
const packageJson = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  name: string;
  exports: Record<string, { import: string }>;
};

export const ownEntryPoints = Object.entries(packageJson.exports).map(([subpath, target]) => ({
  find: new RegExp(`^${(packageJson.name + subpath.slice(1)).replaceAll('/', '\\/')}$`),
  replacement: fileURLToPath(new URL(target.import.replace(/^\.\/dist\//, './').replace(/\.js$/, '.ts'), root)),
}));
