import { type Meter, metrics, type Tracer, trace } from '@opentelemetry/api';
import { SCOPE_NAME, SCOPE_VERSION } from './semantic.js';

/*
 * Sluice talks to OpenTelemetry through `@opentelemetry/api` only: it reads the globally registered
 * tracer and meter providers and never registers one. Without an SDK the API hands out no-op
 * tracers and meters, and Sluice's telemetry costs a few no-op calls per message.
 */

/**
 * The tracer Sluice's spans come from. The API returns a proxy that follows a provider registered
 * later, so an application may register its SDK after creating the bus (not after starting it, for
 * metrics; see {@link sluiceMeter}).
 */
export function sluiceTracer(): Tracer {
  return trace.getTracer(SCOPE_NAME, SCOPE_VERSION);
}

/**
 * The meter Sluice's instruments come from. Unlike tracers, a meter taken before a provider is
 * registered stays a no-op, so callers take it when the bus starts (endpoints) or on first use
 * (producer), never at import time.
 */
export function sluiceMeter(): Meter {
  return metrics.getMeter(SCOPE_NAME, SCOPE_VERSION);
}
