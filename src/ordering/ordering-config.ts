import { z } from 'zod';
import { RegistrationError } from '../errors/sluice-error.js';

const DAY_MS = 24 * 3_600_000;

/**
 * The ordering guard of an endpoint (see docs/ordering-and-tombstones.md). Off by default: an
 * endpoint asks for it. It needs the inbox, because the last applied version of a key is read and
 * written in the inbox transaction.
 */
export const OrderingConfigSchema = z.strictObject({
  /** Compare each event's `occurredAt` with the last one applied for its key; refuse older ones. */
  enabled: z.boolean().default(false),
  /** An event older than the last applied one for its key: `skip` (completed, outcome `stale`) or `deadLetter`. */
  stalePolicy: z.enum(['skip', 'deadLetter']).default('skip'),
  /** How far ahead of this consumer's clock an event may be stamped; unset: no limit. */
  futureSkewMs: z
    .number()
    .int()
    .min(0)
    .max(365 * DAY_MS)
    .optional(),
  /** An event stamped further ahead than `futureSkewMs`: `accept` it (with a warning) or `reject` (dead-letter `future-timestamp`). */
  futurePolicy: z.enum(['accept', 'reject']).default('accept'),
  tombstones: z
    .strictObject({
      /** An event newer than the tombstone of its key: `allow` brings the entity back, `reject` refuses it (outcome `tombstoned`). */
      resurrect: z.enum(['allow', 'reject']).default('allow'),
      /** A tombstone is kept this long after it was recorded, then deleted by the inbox cleanup. */
      retentionMs: z
        .number()
        .int()
        .min(60_000)
        .max(3_650 * DAY_MS)
        .default(30 * DAY_MS),
      /**
       * A tombstone for a message type whose handler has no `onTombstone`: `skip` (outcome
       * `tombstoned`, info log) or `deadLetter` (reason `tombstoned`). Applies with ordering on or off.
       */
      unhandled: z.enum(['skip', 'deadLetter']).default('skip'),
    })
    .default({ resurrect: 'allow', retentionMs: 30 * DAY_MS, unhandled: 'skip' }),
});
export type OrderingConfig = z.infer<typeof OrderingConfigSchema>;
export type OrderingConfigInput = z.input<typeof OrderingConfigSchema>;

export const DEFAULT_ORDERING: OrderingConfig = OrderingConfigSchema.parse({});

/**
 * A handler's override of its endpoint's ordering settings (`.handle(C, h, { ordering })`).
 * `false` turns the guard off for that message type. Tombstone retention is the endpoint's (the
 * versions of one endpoint share one table and one cleanup).
 */
export type OrderingOverride =
  | false
  | (Partial<Pick<OrderingConfig, 'enabled' | 'stalePolicy' | 'futureSkewMs' | 'futurePolicy'>> & {
      readonly tombstones?: Partial<Pick<OrderingConfig['tombstones'], 'resurrect' | 'unhandled'>>;
    });

/**
 * The ordering settings of one handler: the endpoint's, with the handler's override applied.
 * Throws `RegistrationError` naming the field when the override is invalid.
 */
export function resolveOrdering(
  endpoint: OrderingConfig,
  override: OrderingOverride | undefined,
  where: string,
): OrderingConfig {
  if (override === undefined) return endpoint;
  if (override === false) return { ...endpoint, enabled: false };
  const merged = {
    ...endpoint,
    ...override,
    tombstones: { ...endpoint.tombstones, ...override.tombstones, retentionMs: endpoint.tombstones.retentionMs },
  };
  const parsed = OrderingConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${where}.ordering.${i.path.join('.')}: ${i.message}`);
    throw new RegistrationError(issues.join('; '));
  }
  return parsed.data;
}
