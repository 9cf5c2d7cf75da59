/**
 * `sluice/testing`: a test harness for handlers: a bus on the in-memory broker, virtual time, and
 * typed records of what was consumed, published, sent, dead-lettered and skipped. See docs/testing.md.
 */
export {
  createTestHarness,
  DEFAULT_HORIZON_MS,
  DEFAULT_TIMEOUT_MS,
  type SettleOptions,
  TestHarness,
  type TestHarnessOptions,
} from './test-harness.js';
export type {
  ConsumedMessage,
  DeadLetteredRecord,
  HandledAt,
  OutcomeRecord,
  OutgoingRecord,
  SkippedRecord,
} from './message-log.js';
export { NotSettledError, type NotSettledReason } from './not-settled-error.js';
export { ManualClock } from '../internal/clock.js';
