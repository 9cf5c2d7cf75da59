// Types for private-kafka.mjs (plain Node ESM) so strict TypeScript tests can import it.

export interface PrivateKafka {
  /** `['127.0.0.1:<port>']` */
  readonly brokers: string[];
  readonly port: number;
  /** Its directory under `.run/` (data, server.properties, kafka.log, kafka.pid). */
  readonly dir: string;
  /** The broker process is up (it may still be starting after `start()` was called elsewhere). */
  readonly running: boolean;
  /** Starts the broker again on the same ports and data; resolves once it answers. */
  start(): Promise<void>;
  /** Stops the broker (SIGTERM by default, SIGKILL after 30 s); resolves once the process exited. */
  stop(options?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /** Kills the broker and deletes its directory. Call it in `afterAll`. */
  remove(): Promise<void>;
}

/** Starts a private single-node broker on free ports with its own data directory. */
export declare function startPrivateKafka(options?: {
  log?: (message: string) => void;
  timeoutMs?: number;
}): Promise<PrivateKafka>;
