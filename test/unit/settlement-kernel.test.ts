import { describe, expect, it } from 'vitest';
import {
  ACKNOWLEDGED,
  AlreadySettledError,
  type CopyTarget,
  createFault,
  type FaultDetails,
  LockLostError,
  SettlingDelivery,
  type TransportCapabilities,
  TransportError,
} from '../../src/transport-core/index.js';

/**
 * The settlement kernel's rule, over an adapter whose primitives do what the test scripts: the
 * brokers' own failures are the conformance suite's (test/conformance), over real connections.
 */
class ScriptedDelivery extends SettlingDelivery {
  readonly deliveryId = 'scripted#1';
  readonly body = Buffer.from('x');
  readonly headers = { 'x-test': 'yes' };
  readonly deliveryCount = 1;
  readonly partitionKey = undefined;
  readonly address = 'scripted';
  readonly calls: string[] = [];
  /** Failures the next copies throw, in order. */
  copyFailures: Error[] = [];
  gone = false;

  constructor(protected readonly capabilities: TransportCapabilities) {
    super();
  }

  protected acknowledge(): Promise<void> {
    this.calls.push('acknowledge');
    return ACKNOWLEDGED;
  }
  protected giveBack(_headers: unknown, delayMs: number): Promise<void> {
    this.calls.push(`giveBack:${delayMs}`);
    return ACKNOWLEDGED;
  }
  protected async copy(target: CopyTarget, headers: Record<string, string>): Promise<undefined> {
    this.calls.push(`copy:${target.kind}:${headers['sluice-delivery-count'] ?? '-'}`);
    const failure = this.copyFailures.shift();
    if (failure) throw failure;
    return undefined;
  }
  protected async returnUnchanged(): Promise<void> {
    this.calls.push('returnUnchanged');
  }
  protected override async nativeDeadLetter(fault: FaultDetails): Promise<void> {
    this.calls.push(`nativeDeadLetter:${fault.reason}`);
  }
  protected override lockGone(): boolean {
    return this.gone;
  }
}

const copying: TransportCapabilities = {
  nativeDelay: false,
  nativeDeadLetter: false,
  deliveryCount: 'header',
  ordering: 'none',
  durable: true,
};
const native: TransportCapabilities = {
  ...copying,
  nativeDelay: true,
  nativeDeadLetter: true,
  deliveryCount: 'native',
};
const fault = createFault({
  reason: 'retries-exhausted',
  description: 'test',
  attempts: 3,
  endpoint: 'e',
  originalAddress: 'scripted',
  now: new Date(0),
  error: new Error('boom'),
});

describe('settlement kernel', () => {
  it('a settlement that failed with the lock still held leaves the delivery open: the next one goes through', async () => {
    const d = new ScriptedDelivery(copying);
    d.copyFailures = [new TransportError('broker hiccup')];
    await expect(d.release({ delayMs: 1000 })).rejects.toBeInstanceOf(TransportError);
    expect(d.settlement).toBe('open');
    await d.release({ delayMs: 1000 });
    expect(d.settlement).toBe('settled');
    expect(d.calls).toEqual(['copy:release:1', 'copy:release:1', 'acknowledge']);
    await expect(d.complete()).rejects.toBeInstanceOf(AlreadySettledError);
  });

  it('a settlement refused for a lost lock leaves it lost: every later call rejects with LockLostError', async () => {
    const d = new ScriptedDelivery(copying);
    d.copyFailures = [new LockLostError('gone')];
    await expect(d.deadLetter(fault)).rejects.toBeInstanceOf(LockLostError);
    expect(d.settlement).toBe('lost');
    await expect(d.complete()).rejects.toBeInstanceOf(LockLostError);
    await expect(d.release()).rejects.toBeInstanceOf(LockLostError);
    await expect(d.renewLock()).rejects.toBeInstanceOf(LockLostError);
  });

  it('a failure after the lock went (a closed channel, a revoked partition) leaves it lost', async () => {
    const d = new ScriptedDelivery(copying);
    d.copyFailures = [new Error('socket closed')];
    d.gone = true;
    await expect(d.release({ delayMs: 5 })).rejects.toBeInstanceOf(LockLostError);
    expect(d.settlement).toBe('lost');
  });

  it('a plain release whose copy failed gives the message back unchanged (never held for good)', async () => {
    const d = new ScriptedDelivery(copying);
    d.copyFailures = [new TransportError('broker hiccup')];
    await d.release();
    expect(d.settlement).toBe('settled');
    expect(d.calls).toEqual(['copy:release:1', 'returnUnchanged']);
  });

  it('one settlement at a time: a second one while the first runs rejects with AlreadySettledError', async () => {
    const d = new ScriptedDelivery(copying);
    const first = d.deadLetter(fault);
    await expect(d.complete()).rejects.toBeInstanceOf(AlreadySettledError);
    await first;
    expect(d.calls).toEqual(['copy:deadLetter:-', 'acknowledge']);
  });

  it('chooses by the capabilities: in place and native where the broker can, copy-then-remove elsewhere', async () => {
    const inPlace = new ScriptedDelivery(native);
    await inPlace.release({ delayMs: 10 });
    const nativeDead = new ScriptedDelivery(native);
    await nativeDead.deadLetter(fault);
    expect([...inPlace.calls, ...nativeDead.calls]).toEqual(['giveBack:10', 'nativeDeadLetter:retries-exhausted']);
    const copied = new ScriptedDelivery(copying);
    await copied.release();
    expect(copied.calls).toEqual(['copy:release:1', 'acknowledge']);
  });
});
