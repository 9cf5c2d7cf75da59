import type { Logger } from 'pino';

/**
 * Stops the bus on the configured signals (SIGTERM, SIGINT by default), then exits the process when
 * nobody else listens for the signal. Returns the function that removes the handlers.
 */
export function installSignalHandlers(
  signals: readonly NodeJS.Signals[],
  stop: () => Promise<void>,
  logger: Logger,
): () => void {
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const signal of signals) {
    const handler = () => {
      logger.info({ signal }, 'stopping on signal');
      stop().then(
        () => {
          // Exit only when nobody else listens for the signal; otherwise the application decides.
          if (process.listenerCount(signal) === 0) process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'graceful stop failed');
          process.exit(1);
        },
      );
    };
    handlers.set(signal, handler);
    process.once(signal, handler);
  }
  return () => {
    for (const [signal, handler] of handlers) process.removeListener(signal, handler);
    handlers.clear();
  };
}
