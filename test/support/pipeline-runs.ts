import pino from 'pino';
import { systemClock } from '../../src/internal/clock.js';
import { PipelineBuilder } from '../../src/pipeline/compose.js';
import { type AdmittedContext, DeliveryRun, type ValidatedContext } from '../../src/pipeline/context.js';
import { DeliveryPipeline, type PipelineSink, TAKE_TURN } from '../../src/pipeline/delivery-pipeline.js';
import type { MaybePromise } from '../../src/pipeline/maybe-promise.js';
import type { Outcome } from '../../src/pipeline/outcome.js';
import { type Gate, gateAbandoned, gateOutcome, gateStage } from '../../src/pipeline/stages/gate-stage.js';

const silent = pino({ level: 'silent' });

/** A run as the endpoint makes one, for a delivery with this id and partition key. */
export function runOf(
  id: string,
  key: string | undefined,
  stopping: AbortSignal = new AbortController().signal,
): DeliveryRun {
  const delivery = {
    deliveryId: id,
    body: Buffer.from(id),
    headers: {},
    deliveryCount: 1,
    partitionKey: key,
    address: 'q',
    renewLock: async () => {},
  };
  return new DeliveryRun(delivery, { name: 'e', address: 'q', clock: systemClock }, stopping, stopping, silent);
}

export interface Report {
  readonly id: string;
  readonly outcome?: Outcome;
  readonly error?: string;
  readonly now: boolean;
}

/** A pipeline sink that records every report. */
export function recordingSink(): PipelineSink<DeliveryRun> & { reports: Report[] } {
  const reports: Report[] = [];
  return {
    reports,
    outcome: (run, outcome, now) => reports.push({ id: run.delivery.deliveryId, outcome, now }),
    error: (run, error, now) => reports.push({ id: run.delivery.deliveryId, error: String(error), now }),
  };
}

/**
 * One delivery through a pipeline whose turn is the kill switch's gate and then `rest`, with the
 * gate's mapper and abandon hook, as the endpoint builds it: returns its report, and whether it
 * came inside the call (`now`).
 */
export async function throughGate(gate: Gate, rest: (ctx: AdmittedContext) => MaybePromise<Outcome>): Promise<Report> {
  const sink = recordingSink();
  const turn = PipelineBuilder.start<ValidatedContext>().use(gateStage(gate)).end(rest);
  const pipeline = new DeliveryPipeline(
    {
      head: () => TAKE_TURN,
      keyOf: undefined,
      turn,
      mappers: [gateOutcome(gate)],
      abandoned: [gateAbandoned(gate)],
      concurrency: 1,
    },
    sink,
  );
  pipeline.run(runOf('m-1', undefined));
  while (sink.reports.length === 0) await new Promise((resolve) => setImmediate(resolve));
  return sink.reports[0] as Report;
}
