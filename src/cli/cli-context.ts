import type { Command } from 'commander';
import { AdminClient } from './admin-client.js';
import { clientSettings } from './cli-settings.js';

/** What a command needs from the process: a client, its streams, and how to print. */
export interface CliContext {
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: NodeJS.ReadStream;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
}

/** The client for the options given on the command line (`--url`, `--timeout`). */
export function clientOf(command: Command, context: CliContext): AdminClient {
  return new AdminClient(clientSettings(command.optsWithGlobals(), context.env));
}

/** True when `--json` was given: print JSON for scripts instead of tables. */
export function wantsJson(command: Command): boolean {
  return command.optsWithGlobals().json === true;
}

/** Prints a value as one JSON document. */
export function printJson(context: CliContext, value: unknown): void {
  context.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
