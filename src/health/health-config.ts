import { z } from 'zod';

const TokenSchema = z.string().min(16, 'must be at least 16 characters').max(4096);

/** The operator console on the health server (see `docs/console.md`). */
export const AdminConfigSchema = z.strictObject({
  /**
   * The admin API (`{basePath}/admin/v1`) and the web view (`{basePath}/console/`). They answer
   * only when a token is configured too (`token` or `readToken`); `false` keeps them off even then.
   */
  enabled: z.boolean().default(true),
  /** The web view's files are served (the API without them when false). */
  console: z.boolean().default(true),
  /**
   * Dead letters a list, a count by group, a lookup or a redrive/purge selection reads at most,
   * oldest first; answers say `truncated` when there were more.
   */
  scanLimit: z.number().int().min(100).max(1_000_000).default(50_000),
});
export type AdminConfig = z.infer<typeof AdminConfigSchema>;
const DEFAULT_ADMIN: AdminConfig = { enabled: true, console: true, scanLimit: 50_000 };

/**
 * The health HTTP server (`node:http`, no framework). Off by default; the handler itself is also
 * available for an existing server (`createHealthHandler`). See `docs/health-endpoint.md`.
 */
export const HealthConfigSchema = z
  .strictObject({
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
     * Admin bearer token: trip and reset (off without it), and the detailed views with error texts.
     * A secret: give it by environment variable (`SLUICE_HEALTH__TOKEN`); it is redacted from logs.
     */
    token: TokenSchema.optional(),
    /**
     * Read bearer token: when set, `GET {base}/endpoints[/:name]` need it or the admin token, and
     * show error texts to both. Liveness and readiness stay open. A secret
     * (`SLUICE_HEALTH__READ_TOKEN`).
     */
    readToken: TokenSchema.optional(),
    /** Readiness fails while any endpoint's kill switch is not closed (tripped or probing). */
    readinessFailsWhenTripped: z.boolean().default(false),
    /**
     * A request (headers and body) must arrive whole within this; else `408` and the connection is
     * closed. Node's defaults (60 s for headers, 300 s for a request) let a slow client hold a
     * connection for minutes.
     */
    requestTimeoutMs: z.number().int().min(100).max(120_000).default(5_000),
    /** Connections open at once; one more is closed at once (and logged, at most every 10 s). */
    maxConnections: z.number().int().min(1).max(100_000).default(64),
    /** The operator console: admin API and web view (on when a token is configured). */
    admin: AdminConfigSchema.default(DEFAULT_ADMIN),
  })
  .refine((health) => health.token === undefined || health.token !== health.readToken, {
    message: 'must differ from health.token (the read token must not allow trip and reset)',
    path: ['readToken'],
  });
export type HealthConfig = z.infer<typeof HealthConfigSchema>;
export type HealthConfigInput = z.input<typeof HealthConfigSchema>;

export const DEFAULT_HEALTH: HealthConfig = {
  enabled: false,
  port: 8080,
  host: '127.0.0.1',
  basePath: '/health',
  readinessFailsWhenTripped: false,
  requestTimeoutMs: 5_000,
  maxConnections: 64,
  admin: DEFAULT_ADMIN,
};
