import { randomUUID } from 'node:crypto';
import { createFault, type FaultDetails } from '../../errors/fault.js';
import type { Delivery, OutgoingMessage, Transport, TransportDefinition } from '../../transport-core/index.js';
import type { ConformanceCapability } from './conformance-capabilities.js';
import { waitFor } from './wait-for.js';

/** The transport config as the bus configuration holds it (`transport: { kind, ... }`). */
export type TransportConfigInput = { readonly kind: string } & Readonly<Record<string, unknown>>;

/** Collects deliveries in order; `nth(n)` waits for the n-th. */
export interface Collector {
  readonly got: Delivery[];
  readonly onDelivery: (delivery: Delivery) => void;
  nth(n: number): Promise<Delivery>;
}

/** What a case gets from the kit: fresh connections to the broker and small helpers. */
export interface CaseContext {
  /** Upper bound for one message to travel; deadlines are multiples of it. */
  readonly patience: number;
  readonly definition: TransportDefinition;
  config(): TransportConfigInput;
  /** A new connected transport (a new connection); closed after the case. */
  connect(): Promise<Transport>;
  /** Declares a fresh endpoint on `transport`; resolves with its address. */
  declared(transport: Transport): Promise<string>;
  collector(): Collector;
}

/** One situation of the suite. */
export interface ConformanceCase {
  readonly name: string;
  /** Capabilities the case needs; without one of them it is skipped, and reported so. */
  readonly needs?: readonly ConformanceCapability[];
  /** Overrides the test runner's timeout. */
  readonly timeoutMs?: number;
  run(context: CaseContext): Promise<void>;
}

export function collector(patience: number): Collector {
  const got: Delivery[] = [];
  return {
    got,
    onDelivery: (d) => {
      got.push(d);
    },
    nth: async (n) => {
      await waitFor(() => got.length >= n, { timeoutMs: patience, what: `delivery #${n}` });
      return got[n - 1] as Delivery;
    },
  };
}

/** A message with a fresh id, the `x-test: yes` header and a text body. */
export function message(body: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    messageId: randomUUID(),
    body: Buffer.from(body),
    headers: { 'x-test': 'yes' },
    contentType: 'text/plain',
    key: undefined,
    messageType: 'conformance.test.v1',
    ...extra,
  };
}

/** A fault as the retry stage makes one. */
export function fault(reason: 'retries-exhausted' | 'schema-violation', address: string): FaultDetails {
  return createFault({
    reason,
    description: `conformance: ${reason}`,
    attempts: 3,
    endpoint: 'conformance',
    originalAddress: address,
    now: new Date(),
    error: new Error('boom'),
  });
}
