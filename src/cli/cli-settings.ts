import { CliError, ExitCode } from './exit-codes.js';
import type { ClientSettings } from './admin-client.js';

/**
 * The command's settings: the service's URL from `--url` or `SLUICE_URL`, the tokens only from the
 * environment (`SLUICE_ADMIN_TOKEN`, `SLUICE_READ_TOKEN`): a token given as a flag would land in
 * the shell's history and in every process listing. The one place the command reads its environment.
 */
export function clientSettings(options: { url?: string; timeout?: string }, env: NodeJS.ProcessEnv): ClientSettings {
  const url = options.url ?? env.SLUICE_URL;
  if (!url)
    throw new CliError('no service: pass --url or set SLUICE_URL (e.g. http://127.0.0.1:8080/health)', ExitCode.usage);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError('--url: not a URL (e.g. http://127.0.0.1:8080/health)', ExitCode.usage);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new CliError('--url: must be http or https', ExitCode.usage);
  }
  if (parsed.username || parsed.password) {
    throw new CliError('--url: no credentials in the URL; set SLUICE_ADMIN_TOKEN or SLUICE_READ_TOKEN', ExitCode.usage);
  }
  const timeoutMs = Number(options.timeout ?? 30_000);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100)
    throw new CliError('--timeout: milliseconds, at least 100', ExitCode.usage);
  return {
    url: parsed.href,
    adminToken: env.SLUICE_ADMIN_TOKEN || undefined,
    readToken: env.SLUICE_READ_TOKEN || undefined,
    timeoutMs,
  };
}
