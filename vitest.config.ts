import { defineConfig } from 'vitest/config';
import { ownEntryPoints } from './test/support/own-entry-points.js';

// Two groups: everything in parallel first, then `*.serial.test.ts` alone — the place for a test that
// must disrupt a shared server. None does today: the fault and restart tests run private servers
// (test/infra/postgres, rabbitmq, kafka), so they run with the rest.
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
