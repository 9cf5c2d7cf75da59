import type { Logger } from 'pino';
import type { Clock } from '../internal/clock.js';
import type { WaitGauge } from '../internal/wait-gauge.js';
import { KillSwitch, type PausableConsumer } from '../killswitch/kill-switch.js';
import { Admission } from '../killswitch/kill-switch-policy.js';
import type { BusEvents } from '../telemetry/events.js';
import type { EndpointRegistration } from './endpoint-builder.js';

export interface KillSwitchesOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly waits: WaitGauge | undefined;
  readonly emit: <E extends keyof BusEvents>(event: E, payload: BusEvents[E]) => void;
  /** The endpoint's consumer while it runs (the switch pauses and resumes it). */
  readonly consumer: (endpoint: string) => PausableConsumer | undefined;
}

/** The bus's kill switches, one per declared endpoint, made on first use. */
export class KillSwitches {
  readonly #byEndpoint = new Map<string, KillSwitch>();

  constructor(private readonly options: KillSwitchesOptions) {}

  of(registration: EndpointRegistration): KillSwitch {
    const { name } = registration;
    let killSwitch = this.#byEndpoint.get(name);
    if (!killSwitch) {
      const { clock, logger, emit, waits, consumer } = this.options;
      killSwitch = new KillSwitch({
        endpoint: name,
        config: registration.config.killSwitch,
        clock,
        logger: logger.child({ endpoint: name }),
        emit,
        consumer: () => consumer(name),
        waits,
      });
      this.#byEndpoint.set(name, killSwitch);
    }
    return killSwitch;
  }

  /** A row a handler of the endpoint wrote could not go to the broker: its switch counts a dependency failure. */
  brokerFailed(registration: EndpointRegistration, error: unknown): void {
    this.of(registration).observe(
      Admission.unadmitted,
      { kind: 'released', reason: 'dependency', delayMs: 0, headers: {}, dependency: 'broker (outbox)', error },
      undefined,
    );
  }

  /** Stops every switch's restart timer and lets waiting deliveries go (the bus stops). */
  close(): void {
    for (const killSwitch of this.#byEndpoint.values()) killSwitch.close();
  }
}
