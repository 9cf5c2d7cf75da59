import type { BatchObservableCallback, Meter } from '@opentelemetry/api';
import type { KillSwitchState } from '../killswitch/kill-switch-policy.js';
import { sluiceMeter } from '../telemetry/otel.js';
import { Attr, Metric } from '../telemetry/semantic.js';

const KILL_SWITCH_STATES = ['closed', 'tripped', 'probing'] as const satisfies readonly KillSwitchState[];

/** What the observed gauges read: the bus's health view (`bus.health()`). */
export interface ObservedBus {
  health(): {
    readonly endpoints: Readonly<
      Record<string, { readonly inFlight: number; readonly killSwitch: { readonly state: KillSwitchState } }>
    >;
    readonly outbox?: { readonly depth: number; readonly oldestAgeMs: number; readonly movedAside: number };
  };
}

/**
 * Registers the observable instruments of a bus: in-flight deliveries per endpoint and each
 * endpoint's kill switch state (1 for the current state, 0 for the others). They are read when the
 * SDK collects, never on the message path. With an outbox: its depth, the age of its oldest waiting
 * row and its moved-aside rows (as last read by the bus, every `outbox.statsIntervalMs`). Returns the function that unregisters them (on stop).
 */
export function observeBus(system: string, bus: ObservedBus, meter: Meter = sluiceMeter()): () => void {
  const inFlight = meter.createObservableUpDownCounter(Metric.inFlight.name, {
    unit: Metric.inFlight.unit,
    description: Metric.inFlight.description,
  });
  const killSwitch = meter.createObservableGauge(Metric.killSwitchState.name, {
    unit: Metric.killSwitchState.unit,
    description: Metric.killSwitchState.description,
  });
  const gauge = (m: { name: string; unit: string; description: string }) =>
    meter.createObservableGauge(m.name, { unit: m.unit, description: m.description });
  const outboxDepth = gauge(Metric.outboxDepth);
  const outboxAge = gauge(Metric.outboxOldestAge);
  const outboxAside = gauge(Metric.outboxMovedAside);
  const callback: BatchObservableCallback = (result) => {
    const health = bus.health();
    if (health.outbox) {
      const base = { [Attr.messagingSystem]: system };
      result.observe(outboxDepth, health.outbox.depth, base);
      result.observe(outboxAge, health.outbox.oldestAgeMs, base);
      result.observe(outboxAside, health.outbox.movedAside, base);
    }
    for (const [name, endpoint] of Object.entries(health.endpoints)) {
      const base = { [Attr.messagingSystem]: system, [Attr.consumerGroup]: name };
      result.observe(inFlight, endpoint.inFlight, base);
      for (const state of KILL_SWITCH_STATES) {
        result.observe(killSwitch, endpoint.killSwitch.state === state ? 1 : 0, {
          ...base,
          [Attr.killSwitchState]: state,
        });
      }
    }
  };
  const observables = [inFlight, killSwitch, outboxDepth, outboxAge, outboxAside];
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}
