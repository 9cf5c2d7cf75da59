// Types for kafka.mjs (plain Node ESM) so strict TypeScript tests can import it.

export declare const KAFKA_HOST: '127.0.0.1';
export declare const KAFKA_PORT: 9092;
export declare const CONTROLLER_PORT: 9093;
/** `['127.0.0.1:9092']`: use 127.0.0.1, not localhost (kafkajs may resolve localhost to ::1). */
export declare const KAFKA_BROKERS: string[];

export interface EnsureKafkaOptions {
  /** Progress lines (jar fetch, format, spawn, ready). Default: silent. */
  log?: (message: string) => void;
  /** Overall deadline for fetch + format + start + ready. Default 120 000 ms. */
  timeoutMs?: number;
}

export interface EnsureKafkaResult {
  brokers: string[];
  /** True when a broker already answered (or another process started it). */
  reused: boolean;
  pid?: number;
}

/** Reuse a broker answering on 127.0.0.1:9092, or fetch jars / format / spawn a detached one. */
export declare function ensureKafka(options?: EnsureKafkaOptions): Promise<EnsureKafkaResult>;

/** Stop the broker this script started (pid file). Resolves true if one was stopped. */
export declare function stopKafka(options?: { log?: (message: string) => void; timeoutMs?: number }): Promise<boolean>;

/** True when a Kafka broker answers describeCluster on 127.0.0.1:9092 (or `brokers`). */
export declare function kafkaAnswers(options?: { timeoutMs?: number; brokers?: string[] }): Promise<boolean>;
