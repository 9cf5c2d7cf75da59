import { InvalidOutgoingMessageError } from '../errors/sluice-error.js';
import type { DecodeFailure, EnvelopeCodec } from './cloudevents-codec.js';
import type { Envelope } from './envelope.js';

/**
 * Encodes an outgoing envelope after checking it against the rules its consumers enforce: the
 * codec's own (`check`, or else a decode of the encoded bytes), so the producer and the consumer
 * can never disagree. Throws {@link InvalidOutgoingMessageError} naming the field and the rule
 * (what a consumer would dead-letter as `invalid-envelope`); nothing is sent then. Pure.
 */
export function encodeOutgoing(codec: EnvelopeCodec, envelope: Envelope): Buffer {
  const body = codec.encode(envelope);
  let failure: DecodeFailure | undefined;
  if (codec.check) failure = codec.check(envelope);
  else {
    const decoded = codec.decode(body);
    if (!decoded.ok) failure = decoded;
  }
  if (failure) {
    throw new InvalidOutgoingMessageError(
      `${envelope.type}: its consumers would dead-letter it as ${failure.reason}: ${failure.description}`,
    );
  }
  return body;
}
