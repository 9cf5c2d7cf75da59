import type { Span } from '@opentelemetry/api';
import type { Envelope } from '../envelope/envelope.js';
import type {
  AdmittedContext,
  AttemptContext,
  DecodedContext,
  DeliveryContext,
  HandlerContext,
  Route,
  ValidatedContext,
} from './context.js';
import { DeliveryRun } from './context.js';
import type { OutboxMessage } from '../outbox/outbox-store.js';

/*
 * The only writers of a delivery's context. Each takes a context that proved less and returns the
 * same object typed as proving more. Contexts not made by the endpoint (tests) are copied instead.
 */

function run(ctx: DeliveryContext): DeliveryRun {
  if (ctx instanceof DeliveryRun) return ctx;
  const copy = new DeliveryRun(ctx.delivery, ctx.endpoint, ctx.signal, ctx.stopping, ctx.log);
  const proven = ctx as Partial<HandlerContext>;
  if (proven.envelope !== undefined) copy.envelope = proven.envelope;
  if (proven.route !== undefined) copy.route = proven.route;
  if (proven.message !== undefined) copy.message = proven.message;
  if (proven.attempt !== undefined) copy.attempt = proven.attempt;
  if (proven.probe !== undefined) copy.probe = proven.probe;
  if (proven.ticket !== undefined) copy.ticket = proven.ticket;
  if (proven.tx !== undefined) copy.tx = proven.tx;
  if (proven.outbox !== undefined) copy.outbox = proven.outbox;
  if (ctx.span !== undefined) copy.span = ctx.span;
  return copy;
}

export function withEnvelope(ctx: DeliveryContext, envelope: Envelope): DecodedContext {
  const r = run(ctx);
  r.envelope = envelope;
  r.resetLog();
  return r;
}

export function withRoute(ctx: DecodedContext, route: Route, message: unknown): ValidatedContext {
  const r = run(ctx);
  r.route = route;
  r.message = message;
  return r;
}

export function withAdmission(ctx: ValidatedContext, probe: boolean, ticket: number): AdmittedContext {
  const r = run(ctx);
  r.probe = probe;
  r.ticket = ticket;
  return r;
}

export function withAttempt(ctx: AdmittedContext, attempt: number): AttemptContext {
  const r = run(ctx);
  r.attempt = attempt;
  return r;
}

export function withTransaction(ctx: AttemptContext, tx: unknown, outbox?: OutboxMessage[]): HandlerContext {
  const r = run(ctx);
  r.tx = tx;
  r.outbox = outbox;
  return r;
}

/** Attaches the consumer span (telemetry, not a proven fact); later log lines carry its trace id. */
export function withSpan(ctx: DecodedContext, span: Span): DecodedContext {
  const r = run(ctx);
  r.span = span;
  r.resetLog();
  return r;
}
