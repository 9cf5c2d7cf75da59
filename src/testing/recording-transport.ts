import type { OutgoingMessage, Transport } from '../transport-core/transport.js';

/** What a recording transport reports: each message handed to the broker, and each delivery handed out. */
export interface TransportRecorder {
  outgoing(kind: 'publish' | 'send', address: string | undefined, message: OutgoingMessage): void;
  delivered(): void;
}

/**
 * The same transport, with `send`, `publish` and the deliveries of `consume` reported to `recorder`
 * (a message once the broker has it; a delivery before its callback runs). Every other member is
 * the transport's own, called on it, so a transport that grows an operation keeps it here. A
 * publish is reported once, not once per subscriber it fans out to: the transport's own `publish`
 * calls its own `send`, never this one.
 */
export function recordingTransport(transport: Transport, recorder: TransportRecorder): Transport {
  const send: Transport['send'] = async (address, message) => {
    await transport.send(address, message);
    recorder.outgoing('send', address, message);
  };
  const publish: Transport['publish'] = async (message) => {
    await transport.publish(message);
    recorder.outgoing('publish', undefined, message);
  };
  const consume: Transport['consume'] = (address, callback, options) =>
    transport.consume(
      address,
      (delivery) => {
        recorder.delivered();
        callback(delivery);
      },
      options,
    );
  const own: Partial<Record<keyof Transport, unknown>> = { send, publish, consume };
  return new Proxy(transport, {
    get(target, property, _receiver) {
      if (Object.hasOwn(own, property)) return own[property as keyof Transport];
      const value: unknown = Reflect.get(target, property, target);
      // Bound to the transport itself: its methods reach its private state through `this`.
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
