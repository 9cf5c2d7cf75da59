import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { RegistrationError } from '../errors/sluice-error.js';
import type { HealthSource } from '../health/health-handler.js';
import { HttpProblem } from '../health/http-problem.js';
import type { TokenAuthorizer } from '../health/token-authorizer.js';
import type { DeadLetterQueue } from '../transport-core/dead-letter-queue.js';
import type { ExplainOptions, Explanation, MessageExplanation } from '../history/explain.js';
import type { ConsoleAssets } from './console-assets.js';
import type { JobRegistry } from './job-registry.js';

/** What the admin API needs from a bus (a `Bus` is one). */
export interface AdminSource extends HealthSource {
  /** Throws `RegistrationError` for an endpoint that is not declared. */
  deadLetters(endpoint: string): DeadLetterQueue;
  /** A key's timeline (docs/explain.md); rejects with `RegistrationError` for an endpoint that is not declared. */
  explain(key: string, options: ExplainOptions): Promise<Explanation>;
  /** Where one message went. */
  explainMessage(messageId: string): Promise<MessageExplanation>;
}

export interface AdminHandlerOptions {
  /** The same authorizer as the health routes: one token model for the whole server. */
  readonly authorizer: TokenAuthorizer;
  /** Where jobs run; owned by the caller, which closes it. */
  readonly jobs: JobRegistry;
  /** Default `/health`: the API is under `{basePath}/admin/v1`, the web view under `{basePath}/console/`. */
  readonly basePath: string;
  /** Dead letters a list, a count by group or a selection looks at, at most. */
  readonly scanLimit: number;
  readonly requestTimeoutMs: number;
  /** The web view's files; without them `{basePath}/console/` is not served. */
  readonly assets?: ConsoleAssets;
  readonly logger?: Logger;
}

/** One admin request as the routes of a resource answer it. */
export interface AdminExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly source: AdminSource;
  readonly options: AdminHandlerOptions;
  /** `{basePath}/admin/v1`. */
  readonly apiPrefix: string;
  /** Logs an action taken (info), with the route and the caller's address. */
  readonly audit: (req: IncomingMessage, fields: Record<string, unknown>, message: string) => void;
}

/** The query's parameters (the last of a repeated one). */
export function queryOf(req: IncomingMessage): Record<string, string> {
  return Object.fromEntries(new URL(req.url ?? '/', 'http://localhost').searchParams);
}

/** The path's segments, percent-decoded; 400 for bad encoding. */
export function segmentsOf(rest: string): string[] {
  try {
    return rest
      .split('/')
      .filter((s) => s.length > 0)
      .map(decodeURIComponent);
  } catch {
    throw new HttpProblem(400, 'invalid-request', 'the path is not valid percent-encoding');
  }
}

export function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
    throw new HttpProblem(400, 'invalid-request', 'the request is invalid', issues);
  }
  return parsed.data;
}

/** The endpoint's dead-letter queue; 404 for an endpoint that is not declared. */
export function dlqOf(source: AdminSource, name: string): DeadLetterQueue {
  try {
    return source.deadLetters(name);
  } catch (error) {
    if (error instanceof RegistrationError) throw new HttpProblem(404, 'not-found', `no endpoint "${name}"`);
    throw error;
  }
}
