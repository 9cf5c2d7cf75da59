import type { FaultDetails } from '../errors/fault.js';

/** A message sitting in a dead-letter queue, body kept byte for byte. */
export interface DeadLetteredMessage {
  /** Transport id of the dead-lettered copy, used to select it for redrive. */
  readonly deadLetterId: string;
  readonly messageId: string;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly fault: FaultDetails | undefined;
}

/** Which dead letters a redrive moves. */
export type RedriveSelection = { all: true } | { ids: readonly string[] } | { limit: number };

export interface RedriveResult {
  readonly moved: number;
  readonly ids: readonly string[];
}

/**
 * The dead-letter queue of one endpoint. Redrive moves messages back to the endpoint's address with
 * the attempt count reset and `sluice-redriven-at` / `sluice-redrive-reason` stamped; the copy is
 * on the endpoint before the dead letter is removed (a crash can duplicate, never lose).
 */
export interface DeadLetterQueue {
  /** Up to `limit` dead letters, oldest first, without locking or removing them. */
  peek(limit?: number): Promise<DeadLetteredMessage[]>;
  /** How many dead letters are waiting. */
  count(): Promise<number>;
  redrive(selection: RedriveSelection, reason: string): Promise<RedriveResult>;
}
