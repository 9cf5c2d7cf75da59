import type { Channel } from 'amqplib';
import type { EndpointTopology } from '../../src/transport-core/index.js';

export type QueueType = 'quorum' | 'classic';

/** How long an idle delay queue outlives its message TTL before the broker deletes it. */
export const DELAY_QUEUE_GRACE_MS = 15 * 60_000;
/** A delay queue is re-declared (renewing its `x-expires` lease) when its last declare is older. */
export const DELAY_QUEUE_REDECLARE_MS = 60_000;

/** Broker names of one endpoint. Stable wire format: documented in docs/transports/rabbitmq.md. */
export function queueNames(address: string): { queue: string; deadLetter: string } {
  return { queue: address, deadLetter: `${address}.dlq` };
}

/** The fanout exchange a publish of `messageType` goes to; endpoints handling it bind their queue. */
export function exchangeFor(messageType: string): string {
  return messageType;
}

/** The delay queue for `bucketMs` in front of `address`. */
export function delayQueueName(address: string, bucketMs: number): string {
  return `${address}.delay.${bucketMs}`;
}

/**
 * Rounds a delay up to two significant digits (87 → 87, 400 → 400, 1234 → 1300), so that jittered
 * delays share a few queues while a message still waits at least the delay asked for.
 */
export function delayBucketMs(delayMs: number): number {
  if (!(delayMs > 0)) return 0;
  const ms = Math.ceil(delayMs);
  const step = 10 ** Math.max(0, Math.floor(Math.log10(ms)) - 1);
  return Math.ceil(ms / step) * step;
}

function typeArguments(queueType: QueueType): Record<string, unknown> {
  return queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : {};
}

/**
 * Declares an endpoint's queue, its dead-letter queue, its skipped queue (when it has one: a queue
 * of the endpoint's queue type, so that it may also be another endpoint's queue), and the exchange
 * of each handled message type with the queue bound to it. Idempotent; fails with a channel error
 * (406) if a queue already exists with other arguments (another queue type).
 *
 * The dead-letter queue is always a durable classic queue: peek and partial redrive take messages
 * with `basic.get` and give back the ones they leave, and only a classic queue puts a returned
 * message back in its old place (a quorum queue serves returns in the order they came back, so
 * peeking would reorder the dead letters).
 */
export async function declareEndpoint(
  channel: Channel,
  { address, messageTypes, skippedAddress }: EndpointTopology,
  queueType: QueueType,
): Promise<void> {
  const names = queueNames(address);
  const args = typeArguments(queueType);
  await channel.assertQueue(names.queue, { durable: true, arguments: args });
  await channel.assertQueue(names.deadLetter, { durable: true });
  if (skippedAddress !== undefined) await channel.assertQueue(skippedAddress, { durable: true, arguments: args });
  for (const type of messageTypes) {
    const exchange = exchangeFor(type);
    await channel.assertExchange(exchange, 'fanout', { durable: true });
    await channel.bindQueue(names.queue, exchange, '');
  }
}

/** Declares the publish exchange of a message type (a publish to a missing exchange kills the channel). */
export async function declareExchange(channel: Channel, messageType: string): Promise<void> {
  await channel.assertExchange(exchangeFor(messageType), 'fanout', { durable: true });
}

/**
 * Declares the delay queue of `bucketMs` for `address`: messages expire after the bucket and are
 * dead-lettered through the default exchange back to the endpoint queue. No consumer ever reads
 * it, and every message in it has the same TTL, so expiry is in arrival order (no head-of-line
 * blocking). Quorum delay queues dead-letter at-least-once. `x-expires` removes an idle one.
 */
export async function declareDelayQueue(
  channel: Channel,
  address: string,
  bucketMs: number,
  queueType: QueueType,
): Promise<string> {
  const name = delayQueueName(address, bucketMs);
  const args: Record<string, unknown> = {
    ...typeArguments(queueType),
    'x-message-ttl': bucketMs,
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': queueNames(address).queue,
    'x-expires': bucketMs + DELAY_QUEUE_GRACE_MS,
  };
  if (queueType === 'quorum') {
    args['x-dead-letter-strategy'] = 'at-least-once';
    args['x-overflow'] = 'reject-publish';
  }
  await channel.assertQueue(name, { durable: true, arguments: args });
  return name;
}
