import { randomUUID } from 'node:crypto';
import type { Clock } from '../internal/clock.js';

export type JobState = 'selecting' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type JobKind = 'redrive' | 'purge';

/** How far a job got. */
export interface JobProgress {
  /** Dead letters the job means to handle; null while it is still selecting them. */
  readonly total: number | null;
  /** Handled so far (moved, removed or not found). */
  readonly done: number;
  /** Moved (redrive) or removed (purge). */
  readonly succeeded: number;
  /** Selected but no longer there when their turn came (redriven, purged or expired meanwhile). */
  readonly missing: number;
}

/** A job as the admin API shows it (JSON). */
export interface JobView {
  readonly id: string;
  readonly kind: JobKind;
  readonly endpoint: string;
  readonly state: JobState;
  /** What was asked for, as the request said it (`all`, `ids (12)`, a filter). */
  readonly selection: unknown;
  readonly reason?: string;
  readonly createdAt: string;
  readonly finishedAt?: string;
  readonly progress: JobProgress;
  /** Why it failed (redacted), or that it was cancelled. */
  readonly error?: string;
}

/** What a job's work sees of its job. */
export interface JobHandle {
  /** Aborted when the job is cancelled or the bus stops. */
  readonly signal: AbortSignal;
  /** The selection is made: `total` dead letters will be handled. */
  running(total: number): void;
  /** Adds a handled chunk. */
  advance(chunk: { readonly done: number; readonly succeeded: number; readonly missing: number }): void;
}

export interface JobSpec {
  readonly kind: JobKind;
  readonly endpoint: string;
  readonly selection: unknown;
  readonly reason?: string;
}

export interface JobRegistryOptions {
  readonly clock: Clock;
  /** Finished jobs kept (the oldest go first). Default 100. */
  readonly keepFinished?: number;
  /** How long a finished job is kept. Default 1 hour. */
  readonly keepFinishedMs?: number;
  /** Turns a failure into the text the job shows (redacted). */
  readonly describeError: (error: unknown) => string;
}

/** A second job for an endpoint that has one running. */
export class JobConflict extends Error {
  constructor(readonly running: JobView) {
    super(`job ${running.id} (${running.kind}) is still running on endpoint "${running.endpoint}"`);
  }
}

type Listener = (job: JobView) => void;

interface Entry {
  view: JobView;
  readonly abort: AbortController;
  readonly listeners: Set<Listener>;
  done: Promise<void>;
}

/**
 * The long operations of the admin API (redrive, purge) run here, in the bus's process: a job is
 * created by a request and then runs on its own, so a client that disconnects and comes back finds
 * it (`get`), can follow it (`subscribe`) and cancel it. One job at a time per endpoint (two
 * redrives of one queue would fight over its messages). Memory is bounded: finished jobs are kept
 * `keepFinishedMs` and at most `keepFinished` of them. `close()` cancels what runs.
 */
export class JobRegistry {
  readonly #jobs = new Map<string, Entry>();
  readonly #keepFinished: number;
  readonly #keepFinishedMs: number;
  #closed = false;

  constructor(private readonly options: JobRegistryOptions) {
    this.#keepFinished = options.keepFinished ?? 100;
    this.#keepFinishedMs = options.keepFinishedMs ?? 3_600_000;
  }

  /**
   * Starts a job that runs `work` (which throws to fail it). Throws {@link JobConflict} when the
   * endpoint has a job running. Returns at once with the job's first view.
   */
  start(spec: JobSpec, work: (job: JobHandle) => Promise<void>): JobView {
    if (this.#closed) throw new Error('the job registry is closed');
    this.#prune();
    const running = [...this.#jobs.values()].find((e) => e.view.endpoint === spec.endpoint && !isFinished(e.view));
    if (running) throw new JobConflict(running.view);
    const entry: Entry = {
      view: {
        id: randomUUID(),
        kind: spec.kind,
        endpoint: spec.endpoint,
        state: 'selecting',
        selection: spec.selection,
        ...(spec.reason !== undefined ? { reason: spec.reason } : {}),
        createdAt: this.#now(),
        progress: { total: null, done: 0, succeeded: 0, missing: 0 },
      },
      abort: new AbortController(),
      listeners: new Set(),
      done: Promise.resolve(),
    };
    this.#jobs.set(entry.view.id, entry);
    const update = (change: Partial<JobView>) => {
      if (isFinished(entry.view)) return;
      entry.view = { ...entry.view, ...change };
      for (const listener of entry.listeners) listener(entry.view);
    };
    const handle: JobHandle = {
      signal: entry.abort.signal,
      running: (total) => update({ state: 'running', progress: { ...entry.view.progress, total } }),
      advance: (chunk) => {
        const p = entry.view.progress;
        update({
          progress: {
            total: p.total,
            done: p.done + chunk.done,
            succeeded: p.succeeded + chunk.succeeded,
            missing: p.missing + chunk.missing,
          },
        });
      },
    };
    // Started on the next turn: the caller gets the job's id before any work (or failure) happens.
    entry.done = Promise.resolve()
      .then(() => work(handle))
      .then(
        () => update(entry.abort.signal.aborted ? this.#cancelled() : { state: 'succeeded', finishedAt: this.#now() }),
        (error: unknown) =>
          update(
            entry.abort.signal.aborted
              ? this.#cancelled()
              : { state: 'failed', finishedAt: this.#now(), error: this.options.describeError(error) },
          ),
      )
      .finally(() => entry.listeners.clear());
    return entry.view;
  }

  get(id: string): JobView | undefined {
    this.#prune();
    return this.#jobs.get(id)?.view;
  }

  /** Every job kept, newest first. */
  list(): JobView[] {
    this.#prune();
    return [...this.#jobs.values()].map((e) => e.view).reverse();
  }

  /** Asks a running job to stop after its current chunk; returns its view (undefined: no such job). */
  cancel(id: string): JobView | undefined {
    const entry = this.#jobs.get(id);
    if (!entry) return undefined;
    if (!isFinished(entry.view)) entry.abort.abort(new Error('cancelled'));
    return entry.view;
  }

  /** Resolves when the job has finished (at once for an unknown or finished one). */
  async settled(id: string): Promise<JobView | undefined> {
    await this.#jobs.get(id)?.done;
    return this.#jobs.get(id)?.view;
  }

  /**
   * Calls `listener` with each change of a running job; returns the function that stops it. Nothing
   * is called for a finished job.
   */
  subscribe(id: string, listener: Listener): () => void {
    const entry = this.#jobs.get(id);
    if (!entry || isFinished(entry.view)) return () => {};
    entry.listeners.add(listener);
    return () => entry.listeners.delete(listener);
  }

  /** Cancels every running job (the bus is stopping) and waits up to `withinMs` for them to end. */
  async close(withinMs = 0): Promise<void> {
    this.#closed = true;
    const running = [...this.#jobs.values()].filter((e) => !isFinished(e.view));
    for (const entry of running) entry.abort.abort(new Error('the bus is stopping'));
    if (withinMs <= 0 || running.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(running.map((e) => e.done)),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, withinMs);
      }),
    ]);
    clearTimeout(timer);
  }

  #cancelled(): Partial<JobView> {
    return { state: 'cancelled', finishedAt: this.#now(), error: 'cancelled' };
  }

  #now(): string {
    return new Date(this.options.clock.now()).toISOString();
  }

  /** Drops finished jobs past their keeping time, then the oldest beyond the count. */
  #prune(): void {
    const now = this.options.clock.now();
    const finished = [...this.#jobs.values()].filter((e) => isFinished(e.view));
    for (const entry of finished) {
      if (now - Date.parse(entry.view.finishedAt as string) > this.#keepFinishedMs) this.#jobs.delete(entry.view.id);
    }
    const left = finished.filter((e) => this.#jobs.has(e.view.id));
    for (const entry of left.slice(0, Math.max(0, left.length - this.#keepFinished))) this.#jobs.delete(entry.view.id);
  }
}

export function isFinished(job: JobView): boolean {
  return job.state === 'succeeded' || job.state === 'failed' || job.state === 'cancelled';
}
