import type { BatchContext, BatchHandler } from '../contracts/batch-context.js';
import type { Envelope } from '../envelope/envelope.js';
import type { InboxStore } from '../inbox/inbox-store.js';
import { onAbort } from '../internal/abort.js';
import type { Clock } from '../internal/clock.js';
import type { WaitGauge } from '../internal/wait-gauge.js';
import { inboxEntryOf } from './stages/inbox-stage.js';
import type { HandlerContext } from './context.js';
import { COMPLETED, type Outcome, RELEASED_ON_SHUTDOWN } from './outcome.js';
import type { InboxHistoryTap } from './history-tap.js';
import type { Outbox, Written } from '../outbox/outbox.js';
import type { OutboxMessage } from '../outbox/outbox-store.js';
import { derivedId, type Outbound } from './stages/invoke-handler.js';
import type { MessageContract } from '../contracts/define-message.js';
import type { EnvelopeOptions } from '../envelope/envelope.js';
import { createHash } from 'node:crypto';

const DUPLICATE: Outcome = Object.freeze({ kind: 'skipped', reason: 'duplicate' });

interface Waiting {
  readonly ctx: HandlerContext;
  readonly resolve: (outcome: Outcome) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Gathers the messages of one batch route and calls its handler with up to `maxMessages` at once,
 * inside one inbox transaction when the endpoint has an inbox. Each message's pipeline awaits its
 * own outcome: completed, duplicate, or the batch's error (which its retry stage then classifies).
 * When the endpoint starts to stop, the messages still gathering are released (their handler has
 * not run) and the timer is cleared: no batch starts after `stop()` began. `maxWaitMs` is timed on
 * the endpoint's clock; the messages gathering count as waiting on its `waits` gauge.
 */
export class BatchCollector {
  #waiting: Waiting[] = [];
  #cancelTimer: (() => void) | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(
    private readonly handler: BatchHandler<unknown, unknown>,
    private readonly options: { readonly maxMessages: number; readonly maxWaitMs: number },
    private readonly inbox: { readonly store: InboxStore<unknown>; readonly storeEnvelope: boolean } | undefined,
    private readonly deps: {
      readonly clock: Clock;
      readonly waits?: WaitGauge | undefined;
      /** The endpoint's history: each message's row (applied, or duplicate) in the batch's transaction. */
      readonly history?: InboxHistoryTap | undefined;
      readonly outbound: Outbound;
      /** The bus's outbox, when the endpoint uses it (it has an inbox). */
      readonly outbox?: Outbox | undefined;
    },
  ) {}

  submit(ctx: HandlerContext): Promise<Outcome> {
    if (ctx.stopping.aborted) return Promise.resolve(RELEASED_ON_SHUTDOWN);
    return new Promise<Outcome>((resolve, reject) => {
      // One listener for the whole batch on the endpoint's signal (shared by all its deliveries).
      if (this.#waiting.length === 0) this.#unsubscribe = onAbort(ctx.stopping, () => this.#releaseWaiting());
      this.#waiting.push({ ctx, resolve, reject });
      this.deps.waits?.enter();
      if (this.#waiting.length >= this.options.maxMessages) this.#flush();
      else this.#cancelTimer ??= this.#schedule();
    });
  }

  #schedule(): () => void {
    return this.deps.clock.setTimer(() => this.#flush(), this.options.maxWaitMs);
  }

  #flush(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    const batch = this.#take(this.options.maxMessages);
    if (this.#waiting.length > 0) this.#cancelTimer = this.#schedule();
    else this.#stopListening();
    if (batch.length > 0) void this.#run(batch);
  }

  /** Takes up to `n` gathered messages out of the wait. */
  #take(n: number): Waiting[] {
    const taken = this.#waiting.splice(0, n);
    for (let i = 0; i < taken.length; i++) this.deps.waits?.leave();
    return taken;
  }

  /** The endpoint is stopping: what still gathers goes back to the broker untouched. */
  #releaseWaiting(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#unsubscribe = undefined;
    for (const w of this.#take(this.#waiting.length)) w.resolve(RELEASED_ON_SHUTDOWN);
  }

  #stopListening(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  async #run(batch: Waiting[]): Promise<void> {
    try {
      if (!this.inbox) {
        await this.#call(batch, undefined, undefined);
        for (const w of batch) w.resolve(COMPLETED);
        return;
      }
      const { store, storeEnvelope } = this.inbox;
      const { outbox } = this.deps;
      let written: Written | undefined;
      const results = await store
        .runBatch(
          batch.map((w) => inboxEntryOf(w.ctx, storeEnvelope)),
          async (tx, fresh) => {
            const todo = batch.filter((_, i) => fresh[i]);
            const outgoing: OutboxMessage[] | undefined = outbox ? [] : undefined;
            if (todo.length > 0) await this.#call(todo, tx, outgoing);
            if (outbox && outgoing && outgoing.length > 0) written = await outbox.write(tx, outgoing);
            const { history } = this.deps;
            if (history) {
              const rows = batch.flatMap((w, i) => history.rowOf(w.ctx, fresh[i] ? COMPLETED : DUPLICATE) ?? []);
              if (rows.length > 0) await history.writeMany(tx, rows);
            }
            return batch.map(() => ({ result: COMPLETED }));
          },
        )
        .catch((error: unknown) => {
          // Written, then failed: rolled back, or committed without our knowing (a lost commit reply).
          if (outbox && written) outbox.abandon(written);
          throw error;
        });
      // Committed: the batch's messages go out now, in process (settled without waiting for the broker).
      if (outbox && written) await outbox.afterCommit(written);
      for (const [i, w] of batch.entries()) w.resolve(results[i]?.status === 'processed' ? COMPLETED : DUPLICATE);
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  }

  async #call(batch: Waiting[], tx: unknown, outgoing: OutboxMessage[] | undefined): Promise<void> {
    const first = (batch[0] as Waiting).ctx;
    const endpoint = first.endpoint.name;
    const { outbound } = this.deps;
    let published = 0;
    let batchId: string | undefined;
    const optionsOf = (options: EnvelopeOptions = {}): EnvelopeOptions => {
      // Ids derived from the batch's message ids: the same batch run again publishes the same ids.
      batchId ??= createHash('sha256')
        .update(batch.map((w) => w.ctx.envelope.id).join('\u0000'))
        .digest('hex');
      return { ...options, id: options.id ?? derivedId(batchId, endpoint, ++published) };
    };
    const ctx: BatchContext<unknown, unknown> = {
      envelopes: batch.map((w) => w.ctx.envelope as Envelope<unknown>),
      endpoint,
      log: first.log,
      signal: first.signal,
      tx,
      publish: (contract: MessageContract, data: unknown, options?: EnvelopeOptions) =>
        outbound.publish(contract, data, optionsOf(options), outgoing, endpoint),
      send: (to: string, contract: MessageContract, data: unknown, options?: EnvelopeOptions) =>
        outbound.send(to, contract, data, optionsOf(options), outgoing, endpoint),
    };
    await this.handler(
      batch.map((w) => w.ctx.message),
      ctx,
    );
  }
}
