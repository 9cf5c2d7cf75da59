import { z } from 'zod';

const topicTemplate = z
  .string()
  .min(1)
  .max(200)
  .refine((t) => t.includes('{topic}'), 'must contain {topic}');

/**
 * The Kafka transport's configuration (`transport` in the bus config). Every field but `kind` has a
 * default; `sasl.password` is a secret and never logged.
 */
export const KafkaTransportConfigSchema = z.strictObject({
  kind: z.literal('kafka'),
  /** Bootstrap brokers, `host:port`. Use 127.0.0.1 rather than localhost (kafkajs may pick ::1). */
  brokers: z.array(z.string().min(1)).min(1).default(['127.0.0.1:9092']),
  clientId: z.string().min(1).max(200).default('sluice'),
  ssl: z.boolean().optional(),
  sasl: z
    .strictObject({
      mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
      username: z.string().min(1),
      password: z.string().min(1),
    })
    .optional(),
  /** Prefixed to every topic Sluice derives (input, type, retry and dead-letter topics). */
  topicPrefix: z.string().max(100).default(''),
  /** Prefixed to every consumer group id (the group id is the endpoint name). */
  groupIdPrefix: z.string().max(100).default(''),
  /** Topic a publish of a message type goes to; unmapped types use the type name (`:` `/` become `_`). */
  publishTopics: z.record(z.string(), z.string().min(1).max(249)).default({}),
  /** The retry topic of an endpoint; `{topic}` is its input topic, `{group}` its consumer group. */
  retryTopic: topicTemplate.default('{topic}.{group}.retry'),
  /** The dead-letter topic of an endpoint; same placeholders. */
  deadLetterTopic: topicTemplate.default('{topic}.{group}.dlq'),
  /** Partitions and replication of topics `declare` creates; -1 takes the broker's default. */
  numPartitions: z.number().int().min(-1).max(10_000).default(-1),
  replicationFactor: z.number().int().min(-1).max(100).default(-1),
  /** Message type of a tombstone (null value) by topic, when the record has no type header. */
  tombstoneTypes: z.record(z.string(), z.string().min(1).max(256)).default({}),
  /** Consumer group session timeout: how long a dead consumer keeps its partitions. */
  sessionTimeoutMs: z.number().int().min(1_000).max(3_600_000).default(30_000),
  rebalanceTimeoutMs: z.number().int().min(1_000).max(3_600_000).default(60_000),
  heartbeatIntervalMs: z.number().int().min(100).max(60_000).default(3_000),
  /** Longest a fetch waits for data; also the resume latency after a pause. */
  maxWaitTimeMs: z.number().int().min(10).max(30_000).default(250),
  /** Settled offsets are committed at most this often (and always on close). */
  commitIntervalMs: z.number().int().min(0).max(60_000).default(100),
  /**
   * Bytes fetched per partition per request (kafkajs's own default is 1 MiB). The endpoint buffers
   * up to half this of record values or `prefetch` records, whichever is more, plus the fetch
   * response it is taking in (at most 10 MiB, one per broker): lower it for many endpoints in
   * little memory.
   */
  maxBytesPerPartition: z
    .number()
    .int()
    .min(1024)
    .max(100 * 1024 * 1024)
    .default(4 * 1024 * 1024),
  connectionTimeoutMs: z.number().int().min(100).max(120_000).default(3_000),
  requestTimeoutMs: z.number().int().min(100).max(300_000).default(30_000),
  /** Log level of the kafkajs client itself, routed to the transport's logger. */
  clientLogLevel: z.enum(['nothing', 'error', 'warn', 'info', 'debug']).default('warn'),
});
export type KafkaTransportConfig = z.infer<typeof KafkaTransportConfigSchema>;
export type KafkaTransportConfigInput = z.input<typeof KafkaTransportConfigSchema>;
