import { randomUUID } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { afterEach, describe, it } from 'vitest';
import { systemClock } from '../../internal/clock.js';
import type { Transport, TransportDefinition } from '../../transport-core/index.js';
import { busCases } from './cases/bus-cases.js';
import { deadLetterCases } from './cases/dead-letter-cases.js';
import { deliveryCases } from './cases/delivery-cases.js';
import { flowCases } from './cases/flow-cases.js';
import { loadCases } from './cases/load-cases.js';
import { settlementCases } from './cases/settlement-cases.js';
import type { ConformanceCapabilities, ConformanceCapability } from './conformance-capabilities.js';
import { type CaseContext, type ConformanceCase, collector, type TransportConfigInput } from './conformance-case.js';

/** What a transport's test file gives the kit. */
export interface TransportConformanceOptions {
  /** Names the suite in the report: `transport conformance: <name>`. */
  readonly name: string;
  /**
   * The transport's definition: the kit makes every transport from it as the bus does
   * (`create(configSchema.parse(config), deps)`), each a new connection to the same broker, and
   * runs a bus on it for the bus-level cases.
   */
  readonly definition: TransportDefinition;
  /**
   * The transport config as a bus configuration holds it (`transport: { kind, ... }`), checked by
   * the definition's own schema. A function when it is known only once the broker is up (started in
   * a `beforeAll`): it is called when a case runs, not when the suite is declared.
   */
  readonly config: TransportConfigInput | (() => TransportConfigInput);
  /** What the transport can do beyond the contract's minimum; cases that need more are skipped. */
  readonly capabilities: ConformanceCapabilities;
  /**
   * Upper bound for one message to travel on this broker (default 5 s); the cases' deadlines are
   * multiples of it. A bound on a wait, never a speed asserted.
   */
  readonly patienceMs?: number;
  /** Handed to every transport the kit makes (default: silent). */
  readonly logger?: Logger;
}

/** One case of the suite as registered: run, or skipped for the capabilities it lacks. */
export interface ConformanceCaseReport {
  readonly name: string;
  /** The capabilities the case needs. */
  readonly needs: readonly ConformanceCapability[];
  /** Those of `needs` the transport does not declare; the case is skipped when there is any. */
  readonly missing: readonly ConformanceCapability[];
  /** The test's name in the runner's report (a skipped case's says which capability it lacks). */
  readonly testName: string;
}

/** What `runTransportConformance` registered. */
export interface ConformancePlan {
  /** The suite's name in the report. */
  readonly suite: string;
  readonly cases: readonly ConformanceCaseReport[];
  /** The cases that run. */
  readonly run: readonly ConformanceCaseReport[];
  /** The cases skipped for a missing capability. */
  readonly skipped: readonly ConformanceCaseReport[];
}

/** Every case, in the order they run. */
const cases: readonly ConformanceCase[] = [
  ...deliveryCases,
  ...settlementCases,
  ...deadLetterCases,
  ...flowCases,
  ...busCases,
  ...loadCases,
];

/**
 * Registers the transport conformance suite in the calling vitest test file: every case the
 * built-in transports pass, over a real connection to the broker. Call it at the top level of a
 * test file (or inside a `describe`), never inside a test. Cases that need a capability the
 * transport does not declare are registered as skipped, named with what they lack.
 *
 * Each case makes its own connections (`definition.create` + `connect`) and endpoints with fresh
 * names, and closes its connections after it ends; it leaves its queues behind (see the broker's
 * clean-up in your test file). Returns what it registered, for a test file that checks it.
 *
 * Needs vitest (an optional peer dependency of `sluice`, used only by this entry point).
 *
 * @example
 * runTransportConformance({
 *   name: 'my-broker',
 *   definition: myBrokerTransport(),
 *   config: { kind: 'my-broker', url: 'my://127.0.0.1' },
 *   capabilities: { publish: true, competingConsumers: true, deadLetterManagement: false },
 * });
 */
export function runTransportConformance(options: TransportConformanceOptions): ConformancePlan {
  const suite = `transport conformance: ${options.name}`;
  const open: Transport[] = [];
  const logger = options.logger ?? pino({ level: 'silent' });
  const patience = options.patienceMs ?? 5_000;
  const config = (): TransportConfigInput => (typeof options.config === 'function' ? options.config() : options.config);
  const context: CaseContext = {
    patience,
    definition: options.definition,
    config,
    async connect() {
      const definition = options.definition;
      const transport = definition.create(definition.configSchema.parse(config()), { logger, clock: systemClock });
      open.push(transport);
      await transport.connect();
      return transport;
    },
    async declared(t) {
      const address = `conf-${randomUUID().slice(0, 8)}`;
      await t.declare({ address, endpoint: address, messageTypes: [`conf.${address}.v1`] });
      return address;
    },
    collector: () => collector(patience),
  };

  const reports = cases.map((c): ConformanceCaseReport => {
    const needs = c.needs ?? [];
    const missing = needs.filter((capability) => !options.capabilities[capability]);
    const testName = missing.length === 0 ? c.name : `${c.name} (skipped: lacks ${missing.join(', ')})`;
    return { name: c.name, needs, missing, testName };
  });

  describe(suite, () => {
    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((t) => t.close()));
    });
    cases.forEach((c, i) => {
      const report = reports[i] as ConformanceCaseReport;
      if (report.missing.length > 0) it.skip(report.testName, () => {});
      else it(report.testName, () => c.run(context), c.timeoutMs);
    });
  });

  return {
    suite,
    cases: reports,
    run: reports.filter((r) => r.missing.length === 0),
    skipped: reports.filter((r) => r.missing.length > 0),
  };
}
