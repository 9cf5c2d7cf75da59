#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import type { CliContext } from './cli-context.js';
import { dlqCommand } from './commands/dlq.js';
import { endpointsCommand } from './commands/endpoints.js';
import { explainCommand } from './commands/explain.js';
import { jobCommand } from './commands/job.js';
import { killswitchCommand } from './commands/killswitch.js';
import { CliError, ExitCode } from './exit-codes.js';

/**
 * The commands, in the order `--help` lists them. A command is one file under `commands/` that
 * adds itself to the program.
 */
const COMMANDS = [endpointsCommand, dlqCommand, killswitchCommand, explainCommand, jobCommand] as const;

/** Builds the `sluice` program. */
function sluiceProgram(context: CliContext): Command {
  const program = new Command('sluice')
    .description("operate a Sluice service: endpoints, kill switches, dead letters, explain (the service's admin API)")
    .option(
      '--url <url>',
      "the service's health server with its base path, e.g. http://127.0.0.1:8080/health (or SLUICE_URL)",
    )
    .option('--json', 'print JSON (for scripts) instead of tables')
    .option('--timeout <ms>', "one request's limit in milliseconds", '30000')
    .addHelpText(
      'after',
      `
Tokens come from the environment only: SLUICE_READ_TOKEN for reads, SLUICE_ADMIN_TOKEN for actions
(and reads). Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 unauthorized, 5 conflict,
6 unreachable, 7 declined or cancelled, 130 interrupted (a job goes on in the service).`,
    )
    .showHelpAfterError()
    .configureOutput({ writeOut: (text) => context.stdout.write(text), writeErr: (text) => context.stderr.write(text) })
    .exitOverride();
  for (const add of COMMANDS) add(program, context);
  return program;
}

/** Runs the command line; resolves with the exit code. */
async function runSluice(argv: readonly string[], context: CliContext): Promise<number> {
  try {
    await sluiceProgram(context).parseAsync([...argv], { from: 'user' });
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with code 0.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (error instanceof CliError) {
      context.stderr.write(`sluice: ${error.message}\n`);
      return error.exitCode;
    }
    context.stderr.write(`sluice: ${error instanceof Error ? error.message : String(error)}\n`);
    return ExitCode.failed;
  }
}

const context: CliContext = { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
process.exitCode = await runSluice(process.argv.slice(2), context);
