import { createInterface } from 'node:readline/promises';
import type { CliContext } from './cli-context.js';
import { CliError, ExitCode } from './exit-codes.js';

/**
 * Asks before a destructive action unless `--yes` was given. Refuses to ask (exit 2) when stdin is
 * not a terminal: a script must say `--yes`, never answer a prompt it cannot see. With `typed`, the
 * operator types that text (the count) instead of `y`.
 */
export async function confirm(
  context: CliContext,
  options: { readonly yes: boolean; readonly question: string; readonly typed?: string },
): Promise<void> {
  if (options.yes) return;
  if (!context.stdin.isTTY) {
    throw new CliError(`${options.question}\nrefusing to ask: stdin is not a terminal; pass --yes`, ExitCode.usage);
  }
  const prompt = createInterface({ input: context.stdin, output: context.stderr });
  try {
    const hint = options.typed !== undefined ? `type ${options.typed} to confirm` : 'y/N';
    const answer = (await prompt.question(`${options.question} (${hint}) `)).trim();
    const ok = options.typed !== undefined ? answer === options.typed : /^y(es)?$/i.test(answer);
    if (!ok) throw new CliError('not confirmed: nothing was done', ExitCode.declined);
  } finally {
    prompt.close();
  }
}
