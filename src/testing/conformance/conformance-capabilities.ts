/**
 * What a transport declares to the conformance kit that it can do, beyond what every transport must
 * (send, consume under a lock with a prefetch, complete, release with a delay and headers,
 * dead-letter with a fault, peek and count its dead letters, pause, resume, drain on close).
 *
 * The kit runs a case only when the transport declares every capability the case needs; the other
 * cases are registered as skipped, named with the capability they lack, so a report shows them
 * (`12 passed | 3 skipped`) instead of passing them silently. The four built-in transports declare
 * them all. Declare one `false` only when the broker truly lacks it: the bus's operators and
 * features that need it (`bus.publish`, the console's scan, redrive and purge) will fail on it.
 */
export interface ConformanceCapabilities {
  /**
   * `publish(message)` reaches every address declared with the message's type (fan-out by type),
   * besides `send(address, message)` to one address. What `bus.publish` and `ctx.publish` need.
   */
  readonly publish: boolean;
  /**
   * Several consumers of one address at the same time share its messages, and a paused one leaves
   * them to the others. What several instances of one service need.
   */
  readonly competingConsumers: boolean;
  /**
   * The dead-letter queue can be read in pages (`scan`), moved back to its endpoint (`redrive`) and
   * cleared (`purge`), by all, chosen ids and the oldest `limit`. What the operator console needs.
   */
  readonly deadLetterManagement: boolean;
}

/** The name of one capability flag. */
export type ConformanceCapability = keyof ConformanceCapabilities;
