import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Clock } from '../internal/clock.js';
import type { Transport } from './transport.js';

/** What the bus hands a transport factory besides its config. */
export interface TransportDeps {
  readonly logger: Logger;
  readonly clock: Clock;
}

/**
 * Registers a broker by `kind`. The bus picks the definition whose `kind` equals the config's
 * `transport.kind` and validates `transport` with `configSchema` (errors name `transport.<field>`).
 * New brokers plug in by passing their definition to `createBus`; nothing in `src` changes.
 */
export interface TransportDefinition<TConfig extends { kind: string } = { kind: string }> {
  readonly kind: TConfig['kind'];
  readonly configSchema: z.ZodType<TConfig>;
  /** Config fields whose values are secrets: never logged. */
  readonly secretFields?: readonly string[];
  create(config: TConfig, deps: TransportDeps): Transport;
}

/** Identity helper that keeps the config type of a definition. */
export function defineTransport<TConfig extends { kind: string }>(
  definition: TransportDefinition<TConfig>,
): TransportDefinition<TConfig> {
  return definition;
}
