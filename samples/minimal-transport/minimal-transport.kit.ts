// The conformance kit run from outside, as a transport author runs it: only the package's public
// entry points, the transport's definition and config, and the capabilities it declares.
import { runTransportConformance } from 'sluice/testing/conformance';
import { expect, it } from 'vitest';
import { minimalTransport } from './minimal-transport.js';

const plan = runTransportConformance({
  name: 'minimal (a sample)',
  definition: minimalTransport(),
  config: { kind: 'minimal' },
  capabilities: { publish: false, competingConsumers: true, deadLetterManagement: false },
});

// What it lacks is skipped, and reported as skipped under a name that says why: vitest counts the
// cases as skipped (`20 passed | 5 skipped`), never as passed.
it('reports the cases the transport lacks a capability for as skipped', ({ task }) => {
  const tests = task.file.tasks.flatMap((t) => (t.type === 'suite' ? t.tasks : [t]));
  const skipped = tests.filter((t) => t.mode === 'skip');
  expect(skipped.map((t) => t.name).sort()).toEqual(plan.skipped.map((c) => c.testName).sort());
  expect(plan.skipped.map((c) => [c.name, c.missing])).toEqual([
    ['routes a publish to every endpoint bound to its type', ['publish']],
    ['redrives a dead letter back to its endpoint with the attempt count reset', ['deadLetterManagement']],
    ['scans every dead letter in pages, oldest first, without removing any', ['deadLetterManagement']],
    ['purges the oldest by limit and chosen ids, leaving the rest in order', ['deadLetterManagement']],
    [
      'redrives the oldest by limit and chosen ids (dead-letter or message ids), leaving the rest in order',
      ['deadLetterManagement'],
    ],
  ]);
  expect(plan.run).toHaveLength(plan.cases.length - 5);
});
