import type { Logger } from 'pino';
import type { OutboxDispatcher } from './outbox-dispatcher.js';

/** What the relay dispatches claimed rows with. */
export type Dispatch = Pick<OutboxDispatcher, 'dispatch' | 'marked'>;
import type { OutboxConfig, OutboxStore } from './outbox-store.js';

/** How soon the relay looks again while rows of this instance wait behind an earlier row of their key. */
const BLOCKED_POLL_MS = 50;

/**
 * Dispatches what the in-process dispatch did not: rows left by a crash between commit and
 * dispatch, rows the broker did not take (once their backoff is over), rows of a key that waited
 * for an earlier row of the key, rows another instance wrote. It claims due rows in batches (the
 * store's claim: leased, first of their key, `SKIP LOCKED` on PostgreSQL, so that every instance's
 * relay shares the work) and loops while it finds some; then it sleeps until woken (a commit of
 * another instance, via the store's `listen`; rows of this instance that could not be claimed) or
 * until the poll interval (the backup poll where the store notifies). Real time: these waits are not
 * on the message path, and a stop must end them whatever a manual clock does.
 */
export class OutboxRelay {
  #stopped = false;
  #woken = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #listener: { close(): Promise<void> } | undefined;

  constructor(
    private readonly store: OutboxStore<unknown>,
    private readonly dispatcher: Dispatch,
    private readonly config: OutboxConfig,
    private readonly logger: Logger,
    /** Whether rows of this instance wait behind an earlier row of their key (look again soon). */
    private readonly blocked: () => boolean,
  ) {}

  async start(): Promise<void> {
    if (this.store.listen) {
      this.#listener = await this.store.listen(() => this.wake());
    }
    this.#loop = this.#run();
  }

  wake(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /** Ends the loop after its current round; resolves when that round is over. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#listener?.close();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const interval = this.store.listen ? this.config.backupPollIntervalMs : this.config.pollIntervalMs;
    while (!this.#stopped) {
      this.#woken = false;
      let found = 0;
      try {
        const rows = await this.store.claim({ limit: this.config.batchSize, leaseMs: this.config.leaseMs });
        found = rows.length;
        if (found > 0) {
          await this.dispatcher.dispatch(rows);
          // The next rows of these keys are claimable once these are marked.
          await this.dispatcher.marked();
        }
      } catch (error) {
        this.logger.warn({ err: error }, 'outbox relay: the store failed; trying again at the next poll');
        found = 0;
      }
      if (found > 0 || this.#stopped) continue;
      if (this.#woken) continue;
      await this.#sleep(this.blocked() ? Math.min(interval, BLOCKED_POLL_MS) : interval);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }
}
