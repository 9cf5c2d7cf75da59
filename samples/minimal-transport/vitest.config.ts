import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { ownEntryPoints } from '../../test/support/own-entry-points.js';

// The sample transport's conformance run, a vitest run of its own (as in a transport author's
// repository): `minimal-transport.test.ts` starts it and checks its report, so the cases the sample
// declares it lacks are reported as skipped there and never count as skipped tests of the project.
export default defineConfig({
  resolve: { alias: ownEntryPoints },
  test: {
    root: fileURLToPath(new URL('./', import.meta.url)),
    include: ['*.kit.ts'],
    testTimeout: 30_000,
  },
});
