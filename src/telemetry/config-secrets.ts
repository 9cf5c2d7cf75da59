import { secretsOf } from '../internal/redact.js';

/**
 * The secrets a configuration holds at `paths` (dotted, as a `TransportDefinition`'s
 * `secretFields`: `url`, `sasl.password`): each value whole, and what {@link secretsOf} parses out
 * of it (the password of a URL, the key of a Service Bus connection string). For the `known`
 * argument of `redactSecrets` and `safeError`. Paths that hold no string are skipped.
 */
export function configSecrets(config: unknown, paths: readonly string[]): string[] {
  const found = new Set<string>();
  for (const path of paths) {
    let node: unknown = config;
    for (const segment of path.split('.')) {
      node =
        typeof node === 'object' && node !== null && Object.hasOwn(node, segment)
          ? (node as Record<string, unknown>)[segment]
          : undefined;
    }
    if (typeof node !== 'string' || node.length === 0) continue;
    found.add(node);
    for (const secret of secretsOf(node)) found.add(secret);
  }
  return [...found];
}
