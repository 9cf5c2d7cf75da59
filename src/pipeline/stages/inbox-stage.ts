import type { InboxEntry, InboxResult, InboxStore } from '../../inbox/inbox-store.js';
import type { AttemptContext, HandlerContext } from '../context.js';
import { withTransaction } from '../narrow.js';
import type { Outcome } from '../outcome.js';
import type { Stage } from '../compose.js';
import type { InboxHistoryTap } from '../history-tap.js';
import type { Outbox, Written } from '../../outbox/outbox.js';
import type { OutboxMessage } from '../../outbox/outbox-store.js';

const DUPLICATE: Outcome = Object.freeze({ kind: 'skipped', reason: 'duplicate' });

/** Carries a dead letter decided inside the transaction out of it, rolling the transaction back. */
class RollbackWith extends Error {
  constructor(readonly outcome: Outcome) {
    super('dead-lettered inside the inbox transaction');
  }
}

export interface InboxStageOptions {
  /** Keep the whole envelope in the inbox row. */
  readonly storeEnvelope: boolean;
  /** How long to wait before a message another consumer is processing comes back. */
  readonly busyRetryMs: number;
  /** Writes the history row of each final outcome in the same transaction (docs/explain.md). */
  readonly history?: InboxHistoryTap | undefined;
  /**
   * `runOnce` is a group committer's: hand the history row back as the work's `deferred` part, for
   * the committer to write with the other members' in one statement.
   */
  readonly deferHistory?: boolean;
  /** The bus's outbox, when this endpoint uses it: what the handler publishes commits with its effect. */
  readonly outbox?: Outbox | undefined;
}

/**
 * Exactly-once effects: each attempt runs in one inbox transaction that first claims
 * (endpoint, message id). Already processed → `skipped` (duplicate), the handler does not run. The
 * handler gets the transaction as `ctx.tx`; it commits after the handler returns and before the
 * delivery is settled, so a crash before commit re-runs the handler and a crash after it makes the
 * redelivery a duplicate. `runOnce` is the store's, or a group committer's (several messages per
 * transaction).
 */
export function inboxStage(
  runOnce: InboxStore<unknown>['runOnce'],
  options: InboxStageOptions,
): Stage<AttemptContext, HandlerContext> {
  const busy: Outcome = Object.freeze({ kind: 'released', reason: 'busy', delayMs: options.busyRetryMs });
  const { outbox } = options;
  return async (ctx, next) => {
    // Batch handlers claim their messages together, in the batch's own transaction.
    if (ctx.route.batch) return next(withTransaction(ctx, undefined));
    let result: InboxResult<Outcome>;
    // The rows of the run that committed: group commit may run the work again (rerun) after a run
    // that rolled back.
    let written: Written | undefined;
    try {
      const entry = inboxEntryOf(ctx, options.storeEnvelope);
      const { history } = options;
      result = await runOnce(history ? { ...entry, duplicate: history.duplicate(ctx) } : entry, async (tx) => {
        const outgoing: OutboxMessage[] | undefined = outbox ? [] : undefined;
        // A rerun: the rows of the run before did not come to afterCommit.
        if (outbox && written) outbox.abandon(written);
        written = undefined;
        const outcome = await next(withTransaction(ctx, tx, outgoing));
        // A dead letter (the ordering guard's, an unhandled tombstone's) is not "processed": like a
        // handler's ctx.deadLetter it rolls back, so a redrive from the dead-letter queue runs again.
        if (outcome.kind === 'deadLetter') throw new RollbackWith(outcome);
        // What the handler published goes into the outbox in the same transaction, in one statement.
        if (outbox && outgoing && outgoing.length > 0) written = await outbox.write(tx, outgoing);
        const recordAs = outcome.kind === 'skipped' ? outcome.reason : undefined;
        const row = history?.rowOf(ctx, outcome);
        if (row === undefined) return { result: outcome, recordAs };
        if (options.deferHistory) return { result: outcome, recordAs, deferred: row };
        await history?.write(tx, row);
        return { result: outcome, recordAs };
      });
    } catch (error) {
      // Written, then failed: rolled back, or committed without our knowing (a lost commit reply).
      if (outbox && written) outbox.abandon(written);
      if (error instanceof RollbackWith) return error.outcome;
      throw error;
    }
    if (result.status !== 'processed') {
      if (outbox && written) outbox.abandon(written);
      return result.status === 'duplicate' ? DUPLICATE : busy;
    }
    // Committed: the rows go out now, in process; the delivery is settled without waiting for the
    // broker (unless the dispatch backlog is full: back-pressure).
    if (outbox && written) await outbox.afterCommit(written);
    return result.value;
  };
}

/** What the inbox records for the attempt a context describes. */
export function inboxEntryOf(ctx: AttemptContext, storeEnvelope: boolean): InboxEntry {
  const { envelope } = ctx;
  return {
    endpoint: ctx.endpoint.name,
    messageId: envelope.id,
    messageType: envelope.type,
    key: envelope.key,
    occurredAt: envelope.occurredAt,
    receivedAt: new Date(ctx.receivedAt),
    attempts: ctx.attempt,
    envelopeJson: storeEnvelope ? JSON.stringify(envelope) : undefined,
  };
}
