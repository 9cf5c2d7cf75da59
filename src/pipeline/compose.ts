import type { MaybePromise } from './maybe-promise.js';
import type { Outcome } from './outcome.js';

/**
 * A pipeline stage. It may return an outcome itself (short-circuit) or call `next` with a context
 * that proves more (a decoded or validated one), and may inspect or replace what `next` returned.
 *
 * The result is the outcome itself when the stage decided without waiting (and so did what it
 * called), or a promise of it: a message whose stages and handler finish synchronously costs no
 * promise per stage. A stage that looks at what `next` returned handles both (`andThen` of
 * `maybe-promise.ts`), and treats a synchronous throw of `next` as it treats a rejection; a stage
 * may throw, which its callers take as they take a rejection.
 */
export type Stage<In, Out = In> = (ctx: In, next: (ctx: Out) => MaybePromise<Outcome>) => MaybePromise<Outcome>;
export type Terminal<In> = (ctx: In) => MaybePromise<Outcome>;

/**
 * Builds a pipeline once per endpoint. Each `.use` narrows the context type the next stage sees,
 * so the order of stages is checked by the compiler.
 */
export class PipelineBuilder<In, Cur> {
  private constructor(private readonly stages: readonly Stage<unknown, unknown>[]) {}

  static start<In>(): PipelineBuilder<In, In> {
    return new PipelineBuilder<In, In>([]);
  }

  use<Next>(stage: Stage<Cur, Next>): PipelineBuilder<In, Next> {
    return new PipelineBuilder<In, Next>([...this.stages, stage as Stage<unknown, unknown>]);
  }

  end(terminal: Terminal<Cur>): Terminal<In> {
    let run = terminal as Terminal<unknown>;
    for (let i = this.stages.length - 1; i >= 0; i--) {
      const stage = this.stages[i] as Stage<unknown, unknown>;
      const next = run;
      run = (ctx) => stage(ctx, next);
    }
    return run as Terminal<In>;
  }
}
