import { createHash } from 'node:crypto';

/** Service Bus limits a subscription name to 50 characters. */
export const MAX_SUBSCRIPTION_NAME = 50;

export interface EntityNamingOptions {
  readonly topicPrefix: string;
  readonly topics: Readonly<Record<string, string>>;
}

/**
 * How Sluice names Service Bus entities. Pure and deterministic: every process of a service derives
 * the same names, so `verify` and `create` agree with infrastructure code.
 *
 * - endpoint address → queue of that name;
 * - message type `T` → topic `topics[T]`, else `topicPrefix + T`;
 * - endpoint `E` handling `T` → subscription `E` on that topic (shortened with a hash past 50
 *   characters), auto-forwarding into `E`'s queue.
 */
export class EntityNaming {
  constructor(private readonly options: EntityNamingOptions) {}

  topicFor(messageType: string): string {
    return this.options.topics[messageType] ?? sanitize(`${this.options.topicPrefix}${messageType}`);
  }

  subscriptionFor(endpoint: string): string {
    const name = sanitize(endpoint).replace(/\//g, '-');
    if (name.length <= MAX_SUBSCRIPTION_NAME) return name;
    const hash = createHash('sha256').update(endpoint).digest('hex').slice(0, 8);
    return `${name.slice(0, MAX_SUBSCRIPTION_NAME - 9)}-${hash}`;
  }
}

/** Replaces characters Service Bus does not allow in entity names with `-`. */
function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9._\-/]/g, '-');
}
