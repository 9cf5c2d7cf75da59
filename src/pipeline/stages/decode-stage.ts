import type { EnvelopeCodec } from '../../envelope/cloudevents-codec.js';
import { rejectBadInput } from '../bad-input.js';
import type { DecodedContext, DeliveryContext } from '../context.js';
import { withEnvelope } from '../narrow.js';
import type { Stage } from '../compose.js';

/**
 * Bytes → envelope. Oversized or undecodable bodies and invalid envelopes are dead-lettered at once
 * with a reason naming the problem; they are never retried.
 */
export function decodeStage(codec: EnvelopeCodec, maxBodyBytes: number): Stage<DeliveryContext, DecodedContext> {
  return (ctx, next) => {
    const { delivery } = ctx;
    if (delivery.body.length > maxBodyBytes) {
      return rejectBadInput(
        ctx,
        'oversized',
        `body is ${delivery.body.length} bytes; the endpoint's limit (maxBodyBytes) is ${maxBodyBytes}`,
      );
    }
    const decoded = codec.decode(delivery.body);
    if (!decoded.ok) return rejectBadInput(ctx, decoded.reason, decoded.description);
    return next(withEnvelope(ctx, decoded.envelope));
  };
}
