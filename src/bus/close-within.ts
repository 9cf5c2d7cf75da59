import type { Logger } from 'pino';
import { settleWithin } from '../internal/abort.js';
import { safeError } from '../telemetry/logger.js';

/** One step of a bounded shutdown: what it closes, how, and how long it may take. */
export interface CloseStep {
  readonly what: string;
  readonly close: () => Promise<unknown> | undefined;
  readonly withinMs: number;
}

/**
 * Runs shutdown steps one after another, each within its own time: a step that fails or overruns
 * is logged and left behind (its promise may still settle later), so that nothing a broker or a
 * database does can hold a stop. Resolves after at most the sum of the steps' `withinMs`.
 */
export async function closeWithin(steps: readonly CloseStep[], logger: Logger): Promise<void> {
  for (const { what, close, withinMs } of steps) {
    const running = Promise.resolve()
      .then(close)
      .catch((error: unknown) => logger.warn({ err: safeError(error) }, `stop: closing the ${what} failed`));
    if ((await settleWithin(running, withinMs)) === 'timeout') {
      logger.warn({ withinMs }, `stop: the ${what} did not close in time; going on without it`);
    }
  }
}
