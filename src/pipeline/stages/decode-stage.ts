import { type EnvelopeCodec, unstorableJson } from '../../envelope/cloudevents-codec.js';
import { rejectBadInput } from '../bad-input.js';
import type { DecodedContext, DeliveryContext } from '../context.js';
import { withEnvelope } from '../narrow.js';
import type { Stage } from '../compose.js';

export interface DecodeOptions {
  /**
   * The endpoint's inbox keeps each envelope as JSON (`storeEnvelope`): an envelope PostgreSQL's
   * `jsonb` cannot hold (a NUL or an unpaired surrogate anywhere in it) is invalid input here,
   * rather than a claim that fails on every attempt.
   */
  readonly storeEnvelope: boolean;
}

/**
 * Bytes → envelope. Oversized or undecodable bodies and invalid envelopes are dead-lettered at once
 * with a reason naming the problem; they are never retried.
 */
export function decodeStage(
  codec: EnvelopeCodec,
  maxBodyBytes: number,
  options: DecodeOptions = { storeEnvelope: false },
): Stage<DeliveryContext, DecodedContext> {
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
    if (options.storeEnvelope) {
      const why = unstorableJson(JSON.stringify(decoded.envelope));
      if (why !== undefined) {
        const description = `the event ${why}: the inbox keeps whole envelopes (storeEnvelope) and cannot store it`;
        return rejectBadInput(ctx, 'invalid-envelope', description, decoded.envelope);
      }
    }
    return next(withEnvelope(ctx, decoded.envelope));
  };
}
