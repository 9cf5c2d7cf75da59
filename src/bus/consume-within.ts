import { TransportError } from '../errors/sluice-error.js';
import type { Clock } from '../internal/clock.js';
import type { Consumer } from '../transport-core/transport.js';

/**
 * Runs one attempt to make a consumer with the attempt timeout: past it the attempt fails, and a
 * consumer it makes later is handed to `late` (then closed).
 */
export function consumeWithin(
  clock: Clock,
  attemptTimeoutMs: number,
  work: () => Promise<Consumer>,
  late: (consumer: Consumer) => void,
): Promise<Consumer> {
  return new Promise<Consumer>((resolve, reject) => {
    let timedOut = false;
    const cancel = clock.setTimer(() => {
      timedOut = true;
      reject(new TransportError(`consuming again did not succeed within ${attemptTimeoutMs} ms`));
    }, attemptTimeoutMs);
    work().then(
      (consumer) => {
        cancel();
        if (!timedOut) return resolve(consumer);
        late(consumer);
        consumer.close({ drainTimeoutMs: 0 }).catch(() => {});
      },
      (error: unknown) => {
        cancel();
        if (!timedOut) reject(error);
      },
    );
  });
}
