import { describe, expect, it } from 'vitest';
import { errorText, TransportError, transportFailure } from '../../src/transport-core/index.js';

describe('errorText: what a wrapped error and a log line say', () => {
  it("gives an error's message, with its name when asked", () => {
    expect(errorText(new RangeError('too big'))).toBe('too big');
    expect(errorText(new RangeError('too big'), true)).toBe('RangeError: too big');
    expect(errorText('plain')).toBe('plain');
  });

  it('gives the errors of an AggregateError whose own message is empty (a refused connect to a name with two addresses)', () => {
    const refused = (address: string) =>
      Object.assign(new Error(`connect ECONNREFUSED ${address}`), { code: 'ECONNREFUSED' });
    const error = Object.assign(new AggregateError([refused('::1:5300'), refused('127.0.0.1:5300')], ''), {
      code: 'ECONNREFUSED',
    });
    expect(errorText(error)).toBe('connect ECONNREFUSED ::1:5300; connect ECONNREFUSED 127.0.0.1:5300');
    const wrapped = transportFailure('checking Service Bus queue "e"', error);
    expect(wrapped).toBeInstanceOf(TransportError);
    expect(wrapped.message).toBe(
      'checking Service Bus queue "e" failed: connect ECONNREFUSED ::1:5300; connect ECONNREFUSED 127.0.0.1:5300',
    );
  });

  it('gives the code, else the name, of any other error without a message', () => {
    expect(errorText(Object.assign(new Error(''), { code: 'ETIMEDOUT' }))).toBe('ETIMEDOUT');
    expect(errorText(new TypeError(''))).toBe('TypeError');
    expect(errorText(new AggregateError([], ''))).toBe('AggregateError');
  });
});
