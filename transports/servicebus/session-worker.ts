import { isServiceBusError, type ServiceBusReceiver, type ServiceBusSessionReceiver } from '@azure/service-bus';
import type { ConsumerGate } from '../../src/transport-core/index.js';
import { RedeliveryGuard } from './redelivery-guard.js';
import type { ServiceBusTransportConfig } from './service-bus-config.js';
import type { ServiceBusConsumerOptions } from './service-bus-consumer.js';
import { SettlementSequencer } from './settlement-sequencer.js';

/** One SDK receiver (the queue's, or one held session's) and its subscription. */
export interface Lane {
  readonly receiver: ServiceBusReceiver;
  readonly session: boolean;
  readonly sequencer: SettlementSequencer;
  /** Renews the lock of a message that came again while an earlier delivery of it is held. */
  readonly guard: RedeliveryGuard;
  subscription: { close(): Promise<void> } | undefined;
  /** Messages of this lane admitted and not yet done (handed out or waiting for a slot). */
  pending: number;
  lastActivity: number;
  /** The session lock is gone: end the lane once nothing is pending. */
  lost: boolean;
}

/** A new lane of `receiver`, nothing pending, active now. */
export function newLane(receiver: ServiceBusReceiver, session: boolean, options: ServiceBusConsumerOptions): Lane {
  const { clock, config } = options;
  const renewForMs = config.maxAutoLockRenewalDurationMs;
  return {
    receiver,
    session,
    sequencer: new SettlementSequencer(),
    // A session's messages are locked by the session (renewed by the SDK), not one by one.
    guard: new RedeliveryGuard(session || renewForMs <= 0 ? undefined : { receiver, clock, renewForMs }),
    subscription: undefined,
    pending: 0,
    lastActivity: clock.now(),
    lost: false,
  };
}

/** The options of every receiver of a consumer: peek-lock, the SDK's lock renewal, raw bodies. */
export function receiverOptions(config: ServiceBusTransportConfig) {
  return {
    receiveMode: 'peekLock' as const,
    maxAutoLockRenewalDurationInMs: config.maxAutoLockRenewalDurationMs,
    skipParsingBodyAsJson: true,
    skipConvertingDate: true,
  };
}

/** What a session worker uses of its consumer. */
export interface SessionHost {
  readonly gate: ConsumerGate;
  readonly options: ServiceBusConsumerOptions;
  readonly abort: AbortController;
  readonly resumed: { readonly promise: Promise<void> };
  readonly lanes: Set<Lane>;
  newLane(receiver: ServiceBusReceiver, session: boolean): Lane;
  subscribe(lane: Lane): void;
  unsubscribe(lane: Lane): Promise<void>;
  receiving(): void;
  receiveFailed(error: Error): void;
}

/**
 * One of a session queue's workers: accepts the next session with messages (unless paused), holds
 * it as a lane until it is idle, lost, paused or closed, then accepts the next. Several run at once
 * (`maxConcurrentSessions`); the consumer's gate bounds what they hand out together.
 */
export async function runSessionWorker(c: SessionHost): Promise<void> {
  while (!c.gate.closed && !c.gate.stopped) {
    if (c.gate.paused) {
      await c.resumed.promise;
      continue;
    }
    let receiver: ServiceBusSessionReceiver;
    try {
      receiver = await c.options.client.acceptNextSession(c.options.address, {
        ...receiverOptions(c.options.config),
        abortSignal: c.abort.signal,
      });
    } catch (error) {
      if (c.gate.closed || c.gate.stopped) return;
      // No session with messages within the operation timeout: the queue answers; ask again.
      if (isServiceBusError(error) && error.code === 'ServiceTimeout') {
        c.receiving();
        continue;
      }
      c.options.logger.warn({ err: error, address: c.options.address }, 'accepting a session failed');
      c.receiveFailed(error instanceof Error ? error : new Error(String(error)));
      await new Promise<void>((resolve) => c.options.clock.setTimer(resolve, 1_000));
      continue;
    }
    c.receiving();
    await runSession(c, receiver, c.options.config.sessionIdleTimeoutMs);
  }
}

/** Holds one session until it is idle (nothing pending for `idleTimeoutMs`), lost, paused or closed. */
async function runSession(c: SessionHost, receiver: ServiceBusSessionReceiver, idleTimeoutMs: number): Promise<void> {
  const lane = c.newLane(receiver, true);
  if (!c.gate.closed && !c.gate.paused) c.subscribe(lane);
  const every = Math.max(25, Math.floor(idleTimeoutMs / 4));
  const shouldEnd = () =>
    c.gate.held || lane.lost || receiver.isClosed || c.options.clock.now() - lane.lastActivity >= idleTimeoutMs;
  await until(c, () => lane.pending === 0 && shouldEnd(), every);
  // Stop the credit first, then let go of the session once nothing of it is in flight.
  await c.unsubscribe(lane);
  await until(c, () => lane.pending === 0 || receiver.isClosed, every);
  c.lanes.delete(lane);
  await receiver.close().catch(() => {});
}

function until(c: SessionHost, condition: () => boolean, everyMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const check = () => {
      if (condition()) resolve();
      else c.options.clock.setTimer(check, everyMs);
    };
    check();
  });
}
