import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import { describe, expect, it } from 'vitest';
import { copyOf, messageIdOf } from '../../../transports/servicebus/message-mapping.js';

const received = (messageId: string, applicationProperties: Record<string, string> = {}) =>
  ({
    messageId,
    body: Buffer.from('x'),
    applicationProperties,
    deliveryCount: 0,
  }) as unknown as ServiceBusReceivedMessage;

describe('Service Bus copies', () => {
  it('give a copy its own broker message id, so duplicate detection cannot drop it, and keep the original', () => {
    const copy = copyOf(received('order-1'), { 'sluice-attempts': '2' });
    expect(copy.messageId).not.toBe('order-1');
    expect(copy.applicationProperties).toEqual({ 'sluice-attempts': '2', 'sluice-message-id': 'order-1' });
    expect(Buffer.compare(copy.body as Buffer, Buffer.from('x'))).toBe(0);
  });

  it('report the original id for a copy of a copy', () => {
    const first = copyOf(received('order-1'), {});
    const second = copyOf(received(String(first.messageId), first.applicationProperties as Record<string, string>), {});
    expect(second.applicationProperties?.['sluice-message-id']).toBe('order-1');
    expect(
      messageIdOf(received(String(second.messageId), second.applicationProperties as Record<string, string>)),
    ).toBe('order-1');
    expect(messageIdOf(received('plain'))).toBe('plain');
  });
});
