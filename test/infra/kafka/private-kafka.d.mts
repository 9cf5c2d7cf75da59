// Types for private-kafka.mjs (plain Node ESM) so strict TypeScript tests can import it.

export interface KafkaProxy {
  readonly port: number;
  /**
   * Resolves once a FindCoordinator request (the first step of every group join) from a client with
   * this `clientId` arrives: that request is held, never forwarded, and nothing after it on that
   * connection, until the connection closes (stop the broker then: the join fails as if the broker
   * went down in the middle of it).
   */
  holdNextFindCoordinator(clientId: string): Promise<void>;
  /** The same for the next JoinGroup request (a join that never answers, however long one waits). */
  holdNextJoinGroup(clientId: string): Promise<void>;
  /**
   * The same for a Fetch request: the one after the next `after` Fetch requests of this client (those
   * are forwarded). Every later request on that connection (heartbeats too) waits behind it, so the
   * member's fetches time out and, with its retries spent, it crashes in the middle of reading.
   */
  holdFetch(clientId: string, after?: number): Promise<void>;
  /** Bytes the broker has sent so far to the connections of a client with this `clientId`. */
  bytesTo(clientId: string): number;
  close(): Promise<void>;
}

export interface PrivateKafka {
  /** `['127.0.0.1:<port>']`: the broker's address, or the proxy's when started with `proxy: true`. */
  readonly brokers: string[];
  /** The broker's own port. */
  readonly port: number;
  /** With `proxy: true`: the proxy every client connection goes through (the broker advertises it). */
  readonly proxy: KafkaProxy | undefined;
  /** Its directory under `.run/` (data, server.properties, kafka.log, kafka.pid). */
  readonly dir: string;
  /** The broker process is up (it may still be starting after `start()` was called elsewhere). */
  readonly running: boolean;
  /** Starts the broker again on the same ports and data; resolves once it answers. */
  start(): Promise<void>;
  /** Stops the broker (SIGTERM by default, SIGKILL after 30 s); resolves once the process exited. */
  stop(options?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /**
   * Freezes the broker process (SIGSTOP): connections stay open and nothing answers, as with a hung
   * broker; throws when it is not running.
   */
  freeze(): void;
  /** Lets a frozen broker run on (SIGCONT); does nothing when it is not running. */
  thaw(): void;
  /** Kills the broker (frozen or not) and deletes its directory. Call it in `afterAll`. */
  remove(): Promise<void>;
}

/** Starts a private single-node broker on free ports with its own data directory. */
export declare function startPrivateKafka(options?: {
  log?: (message: string) => void;
  timeoutMs?: number;
  /** Extra broker properties (`server.properties` lines). */
  properties?: Record<string, string | number>;
  /** Put a {@link KafkaProxy} in front of the broker. */
  proxy?: boolean;
}): Promise<PrivateKafka>;
