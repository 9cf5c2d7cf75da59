import { z } from 'zod';

/**
 * The health HTTP server (`node:http`, no framework). Off by default; the handler itself is also
 * available for an existing server (`createHealthHandler`). See `docs/health-endpoint.md`.
 */
export const HealthConfigSchema = z.strictObject({
  /** Start the server with the bus. */
  enabled: z.boolean().default(false),
  /** `0` picks a free port (tests). */
  port: z.number().int().min(0).max(65_535).default(8080),
  /** Loopback by default: the endpoint view names errors and the routes can pause consumers. */
  host: z.string().min(1).max(255).default('127.0.0.1'),
  /** Routes live under this path (`/health/live`, ...). */
  basePath: z
    .string()
    .regex(/^(\/[A-Za-z0-9._~-]+)*$/, 'a path like "/health", or "" for the root')
    .default('/health'),
  /**
   * Bearer token for the trip and reset routes; without one those routes are off. A secret: give
   * it by environment variable (`SLUICE_HEALTH__TOKEN`); it is redacted from logs.
   */
  token: z.string().min(16, 'must be at least 16 characters').max(4096).optional(),
  /** Readiness fails while any endpoint's kill switch is not closed (tripped or probing). */
  readinessFailsWhenTripped: z.boolean().default(false),
});
export type HealthConfig = z.infer<typeof HealthConfigSchema>;
export type HealthConfigInput = z.input<typeof HealthConfigSchema>;

export const DEFAULT_HEALTH: HealthConfig = {
  enabled: false,
  port: 8080,
  host: '127.0.0.1',
  basePath: '/health',
  readinessFailsWhenTripped: false,
};
