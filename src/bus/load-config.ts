import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors/sluice-error.js';
import type { BusConfigInput } from './config-schema.js';

export interface LoadConfigOptions {
  /** A JSON file; defaults to `SLUICE_CONFIG` when set. */
  file?: string;
  /** Defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Raw config plus where each environment-provided field came from (for error messages). */
export interface LoadedConfig {
  readonly config: BusConfigInput;
  readonly sources: ReadonlyMap<string, string>;
  /**
   * Each environment-provided field's text as written, by path: a value that looks like a number or
   * a boolean is parsed as one, and `createBus` puts the text back where the field wants a string.
   */
  readonly raw?: ReadonlyMap<string, string>;
}

/** Whether a config argument is `loadConfig()`'s result rather than a plain config object. */
export function isLoadedConfig(value: BusConfigInput | LoadedConfig): value is LoadedConfig {
  return 'sources' in value && value.sources instanceof Map && 'config' in value;
}

/**
 * Reads configuration from a JSON file and `SLUICE_*` environment variables (which win).
 * `SLUICE_TRANSPORT__LOCK_TIMEOUT_MS=5000` sets `transport.lockTimeoutMs`: `__` separates levels
 * and each level is converted from SNAKE_CASE to camelCase. Values that look like numbers, booleans
 * or JSON arrays/objects are parsed as such. The result is validated by `createBus`, which names the
 * variable in its error. This is the only place in Sluice that reads `process.env`.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? env.SLUICE_CONFIG;
  let config: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError([`SLUICE_CONFIG: cannot read "${file}": ${(error as Error).message}`]);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new Error('the top level must be an object');
      }
      config = parsed as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError([`${file}: not valid JSON: ${jsonProblem(error as Error)}`]);
    }
  }
  const sources = new Map<string, string>();
  const rawValues = new Map<string, string>();
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('SLUICE_') || name === 'SLUICE_CONFIG' || raw === undefined) continue;
    const path = name
      .slice('SLUICE_'.length)
      .split('__')
      .map((segment) => segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()));
    if (path.some((p) => p.length === 0)) {
      throw new ConfigError([`${name}: empty path segment (use __ between levels)`]);
    }
    setPath(config, path, parseValue(raw));
    sources.set(path.join('.'), name);
    rawValues.set(path.join('.'), raw);
  }
  return { config: config as BusConfigInput, sources, raw: rawValues };
}

function parseValue(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (raw.startsWith('[') || raw.startsWith('{')) {
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }
  return raw;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const segment of path.slice(0, -1)) {
    const child = node[segment];
    if (typeof child !== 'object' || child === null || Array.isArray(child)) node[segment] = {};
    node = node[segment] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

/**
 * Where a config file's JSON breaks, without V8's quote of the text around it
 * (`Unexpected token 's', ..."token": sup3rsecre"... is not valid JSON`): the file holds secrets.
 */
function jsonProblem(error: Error): string {
  if (!(error instanceof SyntaxError)) return error.message;
  const at = /in JSON at position \d+(?: \(line \d+ column \d+\))?/.exec(error.message);
  const token = /^Unexpected (?:token|end of JSON input|non-whitespace character)/.exec(error.message);
  return at
    ? `syntax error ${at[0]}`
    : `${token?.[0] ?? 'syntax error'} (the text around it is not shown: it may hold a secret)`;
}
