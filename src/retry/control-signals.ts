/**
 * Thrown by `ctx.deadLetter()` and `ctx.retryLater()` to leave the handler at once. The retry stage
 * turns them into outcomes; they never reach user code or logs as failures.
 */
export class DeadLetterSignal {
  constructor(readonly description: string) {}
}

export class RetryLaterSignal {
  constructor(
    readonly delayMs: number,
    readonly why: string | undefined,
  ) {}
}
