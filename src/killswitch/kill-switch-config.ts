import { z } from 'zod';

const ms = z
  .number()
  .int()
  .min(1)
  .max(7 * 24 * 3_600_000);

/** The failure-rate rule: trips when failures / messages ≥ threshold over the window. */
export const FailureRateSchema = z.strictObject({
  /** Fraction of final outcomes that failed, above 0 and at most 1 (`0.5` = half). */
  threshold: z.number().gt(0).max(1),
  /** The sliding window; it moves in steps of a twentieth of its length. */
  windowMs: ms.default(60_000),
  /** No trip before this many final outcomes were seen in the window (MassTransit's activation threshold). */
  minimumMessages: z.number().int().min(1).max(1_000_000).default(20),
});

export const RestartDelaySchema = z.strictObject({
  /** Wait after the first automatic trip before probing. */
  initial: ms.default(30_000),
  /** Each further trip in a row (a failed probe) multiplies the wait by this. */
  factor: z.number().min(1).max(100).default(2),
  /** The wait never grows beyond this. */
  max: ms.default(600_000),
});

/**
 * Per-endpoint kill switch settings. The switch watches final outcomes (after retries) and, when a
 * rule fires, pauses the consumer so that a broken dependency does not drain the queue into the
 * dead-letter queue; see `docs/kill-switch.md`.
 */
export const KillSwitchConfigSchema = z
  .strictObject({
    /** `false` turns the automatic rules off; manual trip and reset still work. */
    enabled: z.boolean().default(true),
    /**
     * Trips after this many handler failures in a row (no success in between); `false` turns the
     * rule off. A run that comes right after successes must also outnumber them (`recentOutcomes`).
     */
    consecutiveFailures: z.union([z.number().int().min(1).max(1_000_000), z.literal(false)]).default(10),
    /**
     * The last outcomes a run of failures is weighed against: the run trips the switch only when the
     * failures among them are at least as many as the successes. A burst of message-specific
     * failures at the end of a healthy stretch (the last messages in flight were poison) then trips
     * nothing until it outnumbers the successes before it (at most `recentOutcomes / 2`); after a
     * start or a quiet spell the run alone decides. `0`: the run alone always decides.
     */
    recentOutcomes: z.number().int().min(0).max(100_000).default(50),
    /**
     * Trips after this many dependency failures in a row (the inbox store, a downstream the handler
     * marks): they are never dead-lettered, so a small number only spares a pause for one reset
     * connection. `false` turns the rule off (the messages still go back with a backoff).
     */
    dependencyFailures: z.union([z.number().int().min(1).max(1_000), z.literal(false)]).default(3),
    /** Trips when the failure rate over a sliding window reaches a threshold; off when absent. */
    failureRate: FailureRateSchema.optional(),
    /** Count bad-input dead letters (schema violations, undecodable bodies) as failures. */
    countBadInput: z.boolean().default(false),
    restartDelayMs: RestartDelaySchema.default({ initial: 30_000, factor: 2, max: 600_000 }),
    /** Messages admitted while probing; the switch closes when all of them succeeded. */
    probeMessages: z.number().int().min(1).max(1_000).default(1),
  })
  .refine((c) => c.restartDelayMs.max >= c.restartDelayMs.initial, {
    message: 'restartDelayMs.max must be at least restartDelayMs.initial',
    path: ['restartDelayMs', 'max'],
  });
export type KillSwitchConfig = z.infer<typeof KillSwitchConfigSchema>;
export type KillSwitchConfigInput = z.input<typeof KillSwitchConfigSchema>;

export const DEFAULT_KILL_SWITCH: KillSwitchConfig = {
  enabled: true,
  consecutiveFailures: 10,
  recentOutcomes: 50,
  dependencyFailures: 3,
  countBadInput: false,
  restartDelayMs: { initial: 30_000, factor: 2, max: 600_000 },
  probeMessages: 1,
};
