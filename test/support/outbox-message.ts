import type { OutboxMessage } from '../../src/outbox/outbox-store.js';

/** An outbox message of `key` (default `K`) whose id and body are `id`: the outbox's unit tests. */
export function keyedMessage(id: string, key: string | undefined = 'K'): OutboxMessage {
  return {
    messageId: id,
    destinationKind: 'publish',
    destination: 'x',
    messageType: 'x',
    key,
    headers: {},
    body: Buffer.from(id),
    sourceEndpoint: undefined,
    causationId: undefined,
  };
}
