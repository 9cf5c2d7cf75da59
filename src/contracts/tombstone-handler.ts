import type { MessageContext } from './message-context.js';

/**
 * What a tombstone handler gets besides the key: the usual message context, with the envelope's
 * `data` typed `unknown` (a tombstone carries no message of the contract; it may carry nothing).
 * `ctx.envelope.tombstone` is `true`.
 */
export type TombstoneContext<TTx = undefined> = MessageContext<unknown, TTx>;

/**
 * Handles the deletion of an entity: a tombstone of the handler's message type (an envelope with
 * `tombstone: true`, or a Kafka record with a null value). `key` is the envelope key (subject).
 * Registered with `.handle(Contract, handler, { onTombstone })`; the normal handler never sees a
 * tombstone.
 */
export type TombstoneHandler<TTx = undefined> = (
  key: string | undefined,
  ctx: TombstoneContext<TTx>,
) => void | Promise<void>;
