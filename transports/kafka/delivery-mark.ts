/**
 * What a consumer group remembers about records it handed out, written as the metadata of every
 * offset commit: every record from the committed offset through `through` was handed out at least
 * `count` times. A member that takes the partition over (after a crash or a rebalance) reads it and
 * counts a re-read record's delivery as `count + 1`. Kafka itself counts nothing.
 */
export interface DeliveryMark {
  readonly through: number;
  readonly count: number;
}

const PREFIX = 'sluice1:';

export function encodeDeliveryMark(mark: DeliveryMark | undefined): string | null {
  return mark ? `${PREFIX}${mark.through}:${mark.count}` : null;
}

/** Reads commit metadata; anything not written by Sluice yields `undefined`. */
export function decodeDeliveryMark(metadata: string | null | undefined): DeliveryMark | undefined {
  if (!metadata?.startsWith(PREFIX)) return undefined;
  const [through, count] = metadata.slice(PREFIX.length).split(':').map(Number);
  if (!Number.isSafeInteger(through) || !Number.isSafeInteger(count) || (count as number) < 1) return undefined;
  return { through: through as number, count: count as number };
}
