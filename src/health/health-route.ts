import { z } from 'zod';
import { HttpProblem } from './http-problem.js';

/** A request the health handler answers. */
export type HealthRoute =
  | { readonly kind: 'live' | 'ready' | 'endpoints' }
  | { readonly kind: 'endpoint'; readonly name: string }
  | { readonly kind: 'trip' | 'reset'; readonly name?: string };

/** The endpoint-name rule of createBus, for names taken from a request's path or query. */
export const EndpointNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/, 'letters, digits and . _ - (at most 200)');

/**
 * The route of a request URL under `basePath`, or undefined when the path is not the handler's.
 * Segments are compared with literals; an endpoint name is only checked against the name rule
 * here (the handler looks it up in a `Map`). Throws `HttpProblem` 400 for bad percent-encoding
 * or an invalid endpoint name.
 */
export function matchHealthRoute(url: string, basePath: string): HealthRoute | undefined {
  const path = url.split('?', 1)[0] as string;
  if (path !== basePath && !path.startsWith(`${basePath}/`)) return undefined;
  let segments: string[];
  try {
    segments = path
      .slice(basePath.length)
      .split('/')
      .filter((s) => s.length > 0)
      .map(decodeURIComponent);
  } catch {
    throw new HttpProblem(400, 'invalid-request', 'the path is not valid percent-encoding');
  }
  const [first, name, action, ...extra] = segments;
  if (extra.length > 0) return undefined;
  if (name === undefined) {
    if (first === 'live' || first === 'ready' || first === 'endpoints') return { kind: first };
    if (first === 'trip' || first === 'reset') return { kind: first };
    return undefined;
  }
  if (first !== 'endpoints') return undefined;
  if (action !== undefined && action !== 'trip' && action !== 'reset') return undefined;
  const parsed = EndpointNameSchema.safeParse(name);
  if (!parsed.success) {
    throw new HttpProblem(400, 'invalid-request', 'the endpoint name is invalid', [
      `name: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    ]);
  }
  return action === undefined ? { kind: 'endpoint', name: parsed.data } : { kind: action, name: parsed.data };
}

/** The path of a request URL, without its query (which may hold anything, a token too): for logs. */
export function pathOf(url: string | undefined): string {
  return (url ?? '/').split('?', 1)[0] as string;
}
