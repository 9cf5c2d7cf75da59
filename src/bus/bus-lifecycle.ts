import type { JobRegistry } from '../admin/job-registry.js';
import { LifecycleError, RegistrationError } from '../errors/sluice-error.js';
import type { HealthServer } from '../health/health-server.js';
import type { Outbox } from '../outbox/outbox.js';
import { type BusHealth, busHealth, startBusHealth } from './bus-health.js';
import type { BusParts, BusState } from './bus-parts.js';
import { assertConfiguredDeclared, openBus, runWhileStarted } from './bus-start.js';
import { busStopSteps } from './bus-stop-steps.js';
import { closeWithin } from './close-within.js';
import type { Endpoint } from './endpoint.js';
import type { EndpointRegistration } from './endpoint-builder.js';
import type { KillSwitches } from './kill-switches.js';

/** The bus as its health server, admin API, metrics and signal handlers see it. */
export type RunningBus = Parameters<typeof startBusHealth>[0] &
  Parameters<typeof runWhileStarted>[1] & { stop(): Promise<void> };

export interface LifecycleDeps {
  readonly parts: BusParts;
  readonly bus: RunningBus;
  readonly outbox: Outbox | undefined;
  readonly killSwitches: KillSwitches;
  readonly build: (registration: EndpointRegistration) => Endpoint;
}

/**
 * The bus's lifecycle: `created` → `starting` → `started` → `stopping` → `stopped`, and the
 * endpoints and servers it opened. Start opens the health server, then the rest (`openBus`); a
 * failure closes what was opened. Stop is idempotent, shared by concurrent callers, bounded
 * (`bus-stop-steps.ts`), and during `start()` it ends the wait for the store.
 */
export class BusLifecycle {
  state: BusState = 'created';
  readonly endpoints = new Map<string, Endpoint>();
  #healthServer: HealthServer | undefined;
  /** The admin API's jobs (redrive, purge), when the console is on. */
  #jobs: JobRegistry | undefined;
  /** Ends what runs while the bus is started (signal handlers, keep-alive, inbox cleanup, metrics). */
  #stopRunning: (() => void) | undefined;
  /** Aborted by `stop()` during `start()`: ends the wait for the inbox store. */
  readonly #startAbort = new AbortController();
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #waitingFor: BusHealth['waitingFor'];

  constructor(private readonly deps: LifecycleDeps) {}

  get healthServer(): HealthServer | undefined {
    return this.#healthServer;
  }

  health(): BusHealth {
    const { parts, killSwitches, outbox } = this.deps;
    return busHealth({
      state: this.state,
      waitingFor: this.#waitingFor,
      transport: parts.transport,
      endpoints: this.endpoints,
      killSwitch: (name) => {
        const registration = parts.registrations.get(name);
        if (!registration) throw new RegistrationError(`no endpoint "${name}" is declared`);
        return killSwitches.of(registration);
      },
      outbox,
    });
  }

  start(): Promise<void> {
    if (this.state !== 'created') return Promise.reject(new LifecycleError(`bus already ${this.state}`));
    this.#starting = this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.state = 'starting';
    const { parts, bus } = this.deps;
    const { transport, config, logger } = parts;
    try {
      assertConfiguredDeclared(parts);
    } catch (error) {
      this.state = 'created';
      throw error;
    }
    try {
      // First, so that liveness and readiness answer (not ready) while the bus waits for the store.
      if (config.health.enabled) ({ server: this.#healthServer, jobs: this.#jobs } = await startBusHealth(bus, parts));
      await openBus(parts, {
        signal: this.#startAbort.signal,
        onWaiting: (waiting) => {
          this.#waitingFor = waiting;
        },
        outbox: this.deps.outbox,
        endpoints: this.endpoints,
        build: this.deps.build,
      });
    } catch (error) {
      this.#waitingFor = undefined;
      await this.#closeAll(0);
      this.state = 'stopped';
      throw error;
    }
    this.#stopRunning = runWhileStarted(parts, bus);
    this.state = 'started';
    logger.info({ transport: transport.kind, endpoints: [...this.endpoints.keys()] }, 'bus started');
  }

  stop(): Promise<void> {
    if (this.state === 'created') {
      this.state = 'stopped';
      return Promise.resolve();
    }
    if (this.state === 'starting') {
      this.#startAbort.abort(new LifecycleError('stopped while starting'));
      this.#stopping ??= (this.#starting ?? Promise.resolve()).then(
        () => this.#stop(),
        () => undefined,
      );
      return this.#stopping;
    }
    if (this.state === 'stopped' && this.#stopping === undefined) return Promise.resolve();
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.state = 'stopping';
    this.#stopRunning?.();
    this.deps.killSwitches.close();
    // Running redrives and purges stop after their current chunk (what was moved stays moved).
    void this.#jobs?.close();
    await this.#closeAll(this.deps.parts.config.shutdown.timeoutMs);
    this.state = 'stopped';
    this.deps.parts.logger.info('bus stopped');
  }

  /** Stops the endpoints (handlers get `timeoutMs`), then closes the rest (`bus-stop-steps.ts`). */
  #closeAll(timeoutMs: number): Promise<void> {
    const { parts, outbox } = this.deps;
    const running = { endpoints: [...this.endpoints.values()], outbox, healthServer: this.#healthServer };
    return closeWithin(busStopSteps(parts, running, timeoutMs), parts.logger);
  }
}
