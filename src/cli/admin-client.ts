import { redactSecrets } from '../internal/redact.js';
import { CliError, ExitCode, exitCodeOfStatus } from './exit-codes.js';

/** Where the service is and the tokens to use (from `cli-settings.ts`). */
export interface ClientSettings {
  /** The health server's base URL, with its base path: `http://127.0.0.1:8080/health`. */
  readonly url: string;
  readonly adminToken?: string | undefined;
  readonly readToken?: string | undefined;
  /** One request's limit. */
  readonly timeoutMs: number;
}

/**
 * The admin API as the command sees it: JSON in and out, with the read token (else the admin
 * token) for reads and the admin token for actions. Every failure becomes a {@link CliError} with
 * the service's own message and the exit code its status means; tokens never appear in messages.
 */
export class AdminClient {
  readonly #base: URL;

  constructor(private readonly settings: ClientSettings) {
    this.#base = new URL(`${settings.url.replace(/\/+$/, '')}/admin/v1/`);
  }

  /** The URL of a path of the API (each part encoded by the caller). */
  url(path: string): URL {
    return new URL(path, this.#base);
  }

  get<T>(path: string): Promise<T> {
    return this.#request<T>('GET', path, this.settings.readToken ?? this.settings.adminToken);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.#request<T>('POST', path, this.settings.adminToken, body);
  }

  /** The headers a read needs (for the event stream, which is read by hand). */
  readHeaders(): Record<string, string> {
    const token = this.settings.readToken ?? this.settings.adminToken;
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  async #request<T>(method: string, path: string, token: string | undefined, body?: unknown): Promise<T> {
    if (token === undefined) {
      const variable = method === 'GET' ? 'SLUICE_READ_TOKEN or SLUICE_ADMIN_TOKEN' : 'SLUICE_ADMIN_TOKEN';
      throw new CliError(`no token: set ${variable}`, ExitCode.unauthorized);
    }
    let response: Response;
    try {
      response = await fetch(this.url(path), {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.settings.timeoutMs),
      });
    } catch (error) {
      throw unreachable(this.#base, error, token);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch {
      throw new CliError(
        `${method} ${this.#base.pathname}${path}: the answer is not JSON (HTTP ${response.status})`,
        ExitCode.failed,
      );
    }
    if (!response.ok) {
      const problem = json as { message?: string; issues?: string[] };
      const issues = problem.issues?.length ? `\n  ${problem.issues.join('\n  ')}` : '';
      throw new CliError(
        `${problem.message ?? `HTTP ${response.status}`} (HTTP ${response.status})${issues}`,
        exitCodeOfStatus(response.status),
      );
    }
    return json as T;
  }
}

/** The service could not be reached: says where (without credentials) and why. */
export function unreachable(base: URL, error: unknown, token?: string): CliError {
  const cause = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
  const where = `${base.protocol}//${base.host}${base.pathname}`;
  return new CliError(
    redactSecrets(`cannot reach the service at ${where}: ${cause}`, token ? [token] : []),
    ExitCode.unreachable,
  );
}
