// Copied into a throwaway package made of the built files (`npm run build`) and run there by
// `package-exports.test.ts`: the kit from the built package, as a transport author imports it, with
// a capability declared missing.
import { memoryTransport } from 'sluice';
import { type ConformancePlan, runTransportConformance } from 'sluice/testing/conformance';
import { FaultHeader, redriveHeaders, SluiceHeader } from 'sluice/transport';

export const plan: ConformancePlan = runTransportConformance({
  name: 'memory, from the built package',
  definition: memoryTransport(),
  config: { kind: 'memory' },
  capabilities: { publish: true, competingConsumers: true, deadLetterManagement: false },
});

export const helpers = [FaultHeader.reason, SluiceHeader.redriveReason, redriveHeaders] as const;
