import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPlainValidCloudEvent } from '../../src/envelope/cloudevents-codec.js';
import { CloudEventSchema } from '../../src/envelope/envelope.js';

// Values near every boundary the schema checks: lengths 0/1/256/257/1024/1025, wrong types, missing.
const text = fc.oneof(
  fc.string({ maxLength: 3 }),
  fc.constantFrom('', 'x', 'a'.repeat(256), 'a'.repeat(257), 'a'.repeat(1024), 'a'.repeat(1025), 'a\u0000b', '\u0000'),
);
const anything = fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.object());
const time = fc.oneof(
  fc.constantFrom(
    '2026-11-22T10:00:00Z',
    '2026-11-22T10:00:00',
    '2026-02-30T10:00:00Z',
    '2026-11-22T10:00:00.123456789+05:30',
    'x',
  ),
  fc
    .date({ noInvalidDate: true, min: new Date('0001-01-01'), max: new Date('9999-12-31') })
    .map((d) => d.toISOString()),
);
const field = <T>(arb: fc.Arbitrary<T>) => fc.option(fc.oneof(arb, anything), { nil: undefined });

const event = fc.record(
  {
    specversion: fc.oneof(fc.constant('1.0'), anything),
    id: field(text),
    source: field(text),
    type: field(text),
    time: field(time),
    datacontenttype: field(text),
    dataschema: field(text),
    subject: field(text),
    correlationid: field(text),
    causationid: field(text),
    tombstone: field(fc.boolean()),
    data: anything,
    extra: anything,
  },
  { requiredKeys: [] },
);

describe('CloudEvents fast path', () => {
  it('never accepts an event the zod schema rejects, and accepts valid ones unchanged', () => {
    fc.assert(
      fc.property(event, (ce) => {
        const fast = isPlainValidCloudEvent(ce);
        const zod = CloudEventSchema.safeParse(ce);
        if (fast) {
          expect(zod.success).toBe(true);
          expect(zod.data).toEqual(ce);
        }
      }),
      { numRuns: 5_000 },
    );
  });

  it('takes the fast path for an ordinary valid event', () => {
    expect(
      isPlainValidCloudEvent({
        specversion: '1.0',
        id: '1',
        source: 's',
        type: 't',
        time: '2026-11-22T10:00:00Z',
        data: {},
      }),
    ).toBe(true);
  });
});
