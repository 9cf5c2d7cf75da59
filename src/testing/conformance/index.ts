/**
 * `sluice/testing/conformance`: the conformance kit for transport authors. The suite every built-in
 * transport passes, registered in a vitest test file by `runTransportConformance`, branching on the
 * capabilities the transport declares. Needs vitest (an optional peer dependency). See
 * docs/testing.md, "Writing a transport".
 */
export type { ConformanceCapabilities, ConformanceCapability } from './conformance-capabilities.js';
export type { TransportConfigInput } from './conformance-case.js';
export {
  type ConformanceCaseReport,
  type ConformancePlan,
  runTransportConformance,
  type TransportConformanceOptions,
} from './run-transport-conformance.js';
