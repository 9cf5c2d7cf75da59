import type { Outcome } from './outcome.js';

/**
 * A pipeline stage. It may return an outcome itself (short-circuit) or call `next` with a context
 * that proves more (a decoded or validated one), and may inspect or replace what `next` returned.
 */
export type Stage<In, Out = In> = (ctx: In, next: (ctx: Out) => Promise<Outcome>) => Promise<Outcome>;
export type Terminal<In> = (ctx: In) => Promise<Outcome>;

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
