import {
  type ConformanceCapabilities,
  type ConformanceCapability,
  type ConformancePlan,
  runTransportConformance,
  type TransportConformanceOptions,
} from 'sluice/testing/conformance';
import type { TransportDefinition } from 'sluice/transport';
import { describe, expectTypeOf, it } from 'vitest';

// Run by the type checker only (`npm run typecheck`, part of `npm test`).
describe('sluice/testing/conformance types', () => {
  it('takes typed options and returns a typed plan, no any', () => {
    expectTypeOf(runTransportConformance).parameter(0).toEqualTypeOf<TransportConformanceOptions>();
    expectTypeOf(runTransportConformance).returns.toEqualTypeOf<ConformancePlan>();
    expectTypeOf<TransportConformanceOptions['definition']>().toEqualTypeOf<TransportDefinition>();
    expectTypeOf<TransportConformanceOptions['capabilities']>().toEqualTypeOf<ConformanceCapabilities>();
    expectTypeOf<ConformanceCapability>().toEqualTypeOf<'publish' | 'competingConsumers' | 'deadLetterManagement'>();
    expectTypeOf<ConformancePlan['skipped'][number]['missing']>().toEqualTypeOf<readonly ConformanceCapability[]>();
    expectTypeOf<TransportConformanceOptions['config']>().not.toBeAny();
  });

  it('asks for every capability flag', () => {
    // @ts-expect-error: a transport declares each capability, true or false.
    const partial: ConformanceCapabilities = { publish: true };
    expectTypeOf(partial).toEqualTypeOf<ConformanceCapabilities>();
  });
});
