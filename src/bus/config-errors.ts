import type { z } from 'zod';
import { ConfigError } from '../errors/sluice-error.js';

/**
 * Turns zod issues into `path: problem` lines. Unknown fields list the allowed ones; `sources`
 * maps a path to where it came from (an environment variable) so the user finds the typo.
 */
export function configErrorFrom(
  error: z.ZodError,
  options: { prefix?: string; schema?: z.ZodType; sources?: ReadonlyMap<string, string> } = {},
): ConfigError {
  const lines: string[] = [];
  for (const issue of error.issues) {
    const segments = [...(options.prefix ? [options.prefix] : []), ...issue.path.map(String)];
    const at = (extra?: string) => [...segments, ...(extra ? [extra] : [])].join('.') || '(root)';
    if (issue.code === 'unrecognized_keys') {
      const allowed = options.schema ? allowedKeys(options.schema, issue.path.map(String)) : undefined;
      for (const key of issue.keys) {
        const source = sourceOf(options.sources, at(key));
        lines.push(
          `${at(key)}: unknown field${source ? ` (from ${source})` : ''}` +
            (allowed ? `; allowed: ${allowed.join(', ')}` : ''),
        );
      }
      continue;
    }
    const source = sourceOf(options.sources, at());
    lines.push(`${at()}: ${issue.message}${source ? ` (from ${source})` : ''}`);
  }
  return new ConfigError(lines);
}

interface Walkable {
  def?: { type?: string; innerType?: Walkable; valueType?: Walkable; shape?: Record<string, Walkable> };
  shape?: Record<string, Walkable>;
}

/** The field names an object schema at `path` accepts (best effort; undefined if unknown). */
function allowedKeys(schema: z.ZodType, path: readonly string[]): string[] | undefined {
  let node: Walkable | undefined = unwrap(schema as unknown as Walkable);
  for (const segment of path) {
    if (!node) return undefined;
    if (node.def?.type === 'record') node = unwrap(node.def.valueType);
    else node = unwrap(node.shape?.[segment]);
  }
  return node?.shape ? Object.keys(node.shape) : undefined;
}

function unwrap(node: Walkable | undefined): Walkable | undefined {
  let current = node;
  while (current?.def && ['default', 'optional', 'nullable', 'prefault'].includes(current.def.type ?? '')) {
    current = current.def.innerType;
  }
  return current;
}

/** The environment variable that set `path` or anything below it. */
function sourceOf(sources: ReadonlyMap<string, string> | undefined, path: string): string | undefined {
  if (!sources) return undefined;
  const exact = sources.get(path);
  if (exact) return exact;
  for (const [p, name] of sources) if (p.startsWith(`${path}.`)) return name;
  return undefined;
}
