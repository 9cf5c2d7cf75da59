import { createRequire } from 'node:module';
import rhea from 'rhea';
import type { Delivery, Sender } from 'rhea';
import type { AmqpErrorShape } from './amqp-errors.js';

/** The parts of rhea's runtime objects the emulator needs that its typings do not declare. */
export interface AttachFrame {
  name?: string;
  source?: { address?: string; filter?: Record<string, unknown> } | null;
  target?: { address?: string } | null;
  snd_settle_mode?: number;
  rcv_settle_mode?: number;
  properties?: Record<string, unknown> | null;
}

interface LinkInternals {
  local: { attach: Record<string, unknown> };
  remote: { attach?: AttachFrame };
  state: { local_open: boolean; open_requests: number };
  credit: number;
  session: {
    outgoing: {
      next_pending_delivery: number;
      next_delivery_id: number;
      deliveries: { by_id(id: number): { link: unknown } | undefined };
    };
  };
}

function internals(link: object): LinkInternals {
  return link as unknown as LinkInternals;
}

export function remoteAttach(link: object): AttachFrame {
  return internals(link).remote.attach ?? {};
}

export function setLocalAttachField(link: object, field: string, value: unknown): void {
  internals(link).local.attach[field] = value;
}

/** Undoes the automatic attach rhea queues on a remote attach, so that the reply can be held back. */
export function holdAttach(link: object): void {
  const state = internals(link).state;
  if (state.local_open && state.open_requests > 0) {
    state.local_open = false;
    state.open_requests -= 1;
  }
}

export function isLocallyOpen(link: object): boolean {
  return internals(link).state.local_open;
}

/** Credit not yet consumed by deliveries already handed to rhea but not yet written. */
export function unusedCredit(sender: Sender): number {
  const link = internals(sender);
  const outgoing = link.session.outgoing;
  let unwritten = 0;
  for (let id = outgoing.next_pending_delivery; id < outgoing.next_delivery_id; id++) {
    if (outgoing.deliveries.by_id(id)?.link === sender) unwritten++;
  }
  return link.credit - unwritten;
}

interface OutcomeFactory {
  accepted(): { described(): unknown };
  rejected(fields?: { error?: AmqpErrorShape }): { described(): unknown };
  released(): { described(): unknown };
  modified(fields?: Record<string, unknown>): { described(): unknown };
}

const outcomes = rhea.message as unknown as OutcomeFactory;

export type OutcomeKind = 'accepted' | 'rejected' | 'released' | 'modified';

function outcomeState(kind: OutcomeKind, fields?: Record<string, unknown>): unknown {
  switch (kind) {
    case 'accepted':
      return outcomes.accepted().described();
    case 'rejected':
      return outcomes.rejected(fields as { error?: AmqpErrorShape }).described();
    case 'released':
      return outcomes.released().described();
    case 'modified':
      return outcomes.modified(fields).described();
  }
}

export function settleWith(delivery: Delivery, kind: OutcomeKind, fields?: Record<string, unknown>): void {
  delivery.update(true, outcomeState(kind, fields));
}

interface SentDelivery {
  readonly id: number;
  settled: boolean;
  state: unknown;
  remote_settled: boolean;
  readonly link: { is_receiver(): boolean; session: { output(frame: unknown): void } };
}

const frames = createRequire(import.meta.url)('rhea/lib/frames.js') as {
  disposition(fields: Record<string, unknown>): unknown;
};

/**
 * Settles a delivery the server sent (rcv-settle-mode second: the client's disposition first, then
 * the server's final one), in a disposition frame of its own.
 *
 * Not through rhea's pending dispositions: rhea 3.0.5 (`write_dispositions`) merges the first two
 * adjacent ones of a session into one range whatever their outcomes, so a lost lock and a
 * completion answered in one tick (one client disposition over both) were both reported as the
 * first one's outcome: a completed message reported lost (the client waits for a redelivery that
 * never comes), or a lost lock reported completed.
 *
 * The SDK never answers the server's settlement with one of its own, and rhea only frees an
 * outgoing delivery once both sides settled: without marking it settled by the peer too, each
 * session's outgoing buffer (2048 entries) fills after 2048 deliveries and rhea throws "circular
 * buffer overflow".
 */
export function settleSent(delivery: Delivery, kind: OutcomeKind, fields?: Record<string, unknown>): void {
  const sent = delivery as unknown as SentDelivery;
  const state = outcomeState(kind, fields);
  sent.settled = true;
  sent.state = state;
  sent.remote_settled = true;
  sent.link.session.output(
    frames.disposition({ role: sent.link.is_receiver(), first: sent.id, last: sent.id, state, settled: true }),
  );
}

/** The unwrapped remote outcome of a delivery (rhea composite instance). */
export interface RemoteOutcome {
  error?: { condition?: unknown; description?: unknown; info?: Record<string, unknown> | null } | null;
  undeliverable_here?: boolean;
  delivery_failed?: boolean;
  message_annotations?: Record<string, unknown> | null;
}
