import type { z } from 'zod';
import type { LoadedConfig } from './load-config.js';

/**
 * `schema.safeParse(value)`, forgiving one thing `loadConfig` cannot know: an environment variable
 * whose text looks like a number or a boolean (`SLUICE_HEALTH__TOKEN=1234567890123456`) is read as
 * one, but the field wants a string. Where the schema refuses a non-string at a path an environment
 * variable set, the variable's own text is put back and the value parsed once more. `prefix` is the
 * section's path in the whole configuration (`transport`, `endpoints.billing`).
 */
export function parseConfig<T>(
  schema: z.ZodType<T>,
  value: unknown,
  loaded: Pick<LoadedConfig, 'raw'>,
  prefix?: string,
): z.ZodSafeParseResult<T> {
  const result = schema.safeParse(value);
  if (result.success || loaded.raw === undefined || loaded.raw.size === 0) return result;
  let patched: unknown;
  for (const issue of result.error.issues) {
    if (issue.code !== 'invalid_type' || issue.expected !== 'string') continue;
    const path = issue.path.map(String);
    const text = loaded.raw.get([...(prefix ? [prefix] : []), ...path].join('.'));
    if (text === undefined) continue;
    patched ??= structuredClone(value);
    setAt(patched, path, text);
  }
  return patched === undefined ? result : schema.safeParse(patched);
}

function setAt(target: unknown, path: readonly string[], text: string): void {
  let node = target as Record<string, unknown>;
  for (const segment of path.slice(0, -1)) {
    const child = node[segment];
    if (typeof child !== 'object' || child === null) return;
    node = child as Record<string, unknown>;
  }
  const last = path[path.length - 1];
  if (last !== undefined) node[last] = text;
}
