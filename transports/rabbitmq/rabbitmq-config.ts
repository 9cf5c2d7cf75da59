import { z } from 'zod';

const AMQP_URL = /^amqps?:\/\//i;

function isAmqpUrl(value: string): boolean {
  if (!AMQP_URL.test(value)) return false;
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * TLS settings for an `amqps://` connection. Certificates and the key are PEM text (load files
 * yourself, e.g. with `readFileSync`, or pass them through the environment).
 */
export const RabbitmqTlsSchema = z.strictObject({
  /** PEM of the CA that signed the broker's certificate (else the system's CAs). */
  ca: z.string().min(1).optional(),
  /** PEM client certificate, for mutual TLS (EXTERNAL or PLAIN auth over TLS). */
  cert: z.string().min(1).optional(),
  /** PEM private key of the client certificate. A secret: never logged. */
  key: z.string().min(1).optional(),
  /** Verify the broker's certificate. Turn off only for a local test broker. */
  rejectUnauthorized: z.boolean().default(true),
});

/**
 * Configuration of the RabbitMQ transport (`transport` in the bus config). Every field has a
 * default, so `{ kind: 'rabbitmq' }` connects to a local broker as guest.
 */
export const RabbitmqTransportConfigSchema = z.strictObject({
  kind: z.literal('rabbitmq'),
  /** `amqp://user:password@host:port/vhost` or `amqps://...`. A secret: never logged unredacted. */
  url: z.string().refine(isAmqpUrl, 'must be an amqp:// or amqps:// URL').default('amqp://guest:guest@127.0.0.1:5672'),
  /** Type of the endpoint, dead-letter and delay queues. Quorum: replicated, native delivery count. */
  queueType: z.enum(['quorum', 'classic']).default('quorum'),
  tls: RabbitmqTlsSchema.optional(),
  /** Backoff between reconnect attempts: doubles from `initialDelayMs` up to `maxDelayMs`, ±20% jitter. */
  reconnect: z
    .strictObject({
      initialDelayMs: z.number().int().min(10).max(60_000).default(200),
      maxDelayMs: z.number().int().min(10).max(600_000).default(15_000),
    })
    .refine((r) => r.maxDelayMs >= r.initialDelayMs, {
      message: 'maxDelayMs must be at least initialDelayMs',
      path: ['maxDelayMs'],
    })
    .default({ initialDelayMs: 200, maxDelayMs: 15_000 }),
  /**
   * How long a send or publish may wait for a connection and the broker's confirm before it fails
   * with `TransportError` (the message may then be on the broker or not: retrying can duplicate).
   */
  publishTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  /**
   * How long opening a connection (TCP, TLS, the AMQP handshake) may go without a byte from the
   * broker before the attempt fails: a broker that accepts connections and never answers (hung, or
   * a load balancer with no backend) fails the start and is retried on reconnect, never waited on.
   */
  connectTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  /** AMQP heartbeat: a dead peer is noticed after about twice this. 0 disables heartbeats. */
  heartbeatSeconds: z.number().int().min(0).max(600).default(15),
});
export type RabbitmqTransportConfig = z.infer<typeof RabbitmqTransportConfigSchema>;
export type RabbitmqTransportConfigInput = z.input<typeof RabbitmqTransportConfigSchema>;
