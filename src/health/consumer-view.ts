/** Where an endpoint's consumer is. Only `consuming` is healthy; paused or not is told apart. */
export type ConsumerState = 'starting' | 'consuming' | 'reconnecting' | 'restarting' | 'closed';

/** A JSON-ready view of an endpoint's consumer (in `bus.health()` and `GET /health/endpoints`). */
export interface ConsumerView {
  readonly state: ConsumerState;
  /** Paused on purpose (kill switch, stopping): a paused consumer is still `consuming`. */
  readonly paused: boolean;
  /** When the current state began (RFC 3339). */
  readonly since: string;
  /** Why it is not consuming (`reconnecting`, `restarting`): the error it stopped with, credentials masked. */
  readonly reason?: string;
  /** Restart attempts that failed since it stopped (`restarting`). */
  readonly failedAttempts?: number;
  /** Why the last restart attempt failed, credentials masked. */
  readonly lastAttemptError?: string;
  /** When the next restart attempt runs (`restarting`). */
  readonly nextAttemptAt?: string;
  /** Times the consumer was re-created since the bus started. */
  readonly restarts: number;
}

/** A time of the view: RFC 3339. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
