import type { Command } from 'commander';
import { type CliContext, clientOf, printJson, wantsJson } from '../cli-context.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { table } from '../table.js';

interface SwitchesAnswer {
  endpoints: { name: string; killSwitch: { state: string; reason?: string; manual: boolean } }[];
}

/** `sluice killswitch trip|reset <endpoint> | --all`. */
export function killswitchCommand(program: Command, context: CliContext): void {
  const killswitch = program.command('killswitch').description("trip or reset endpoints' kill switches");
  const run = async (
    action: 'trip' | 'reset',
    endpoint: string | undefined,
    options: { all?: boolean; reason?: string },
    command: Command,
  ) => {
    if ((endpoint === undefined) === (options.all !== true)) {
      throw new CliError('name one endpoint, or pass --all', ExitCode.usage);
    }
    const path =
      endpoint === undefined
        ? `kill-switch/${action}`
        : `endpoints/${encodeURIComponent(endpoint)}/kill-switch/${action}`;
    const answer = await clientOf(command, context).post<SwitchesAnswer>(
      path,
      options.reason ? { reason: options.reason } : {},
    );
    if (wantsJson(command)) return printJson(context, answer);
    context.stdout.write(
      `${table(
        ['endpoint', 'kill switch', 'reason'],
        answer.endpoints.map((e) => [e.name, e.killSwitch.state, e.killSwitch.reason ?? '']),
      )}\n`,
    );
  };
  killswitch
    .command('trip')
    .description('pause an endpoint (or all) until reset: messages stay on the broker')
    .argument('[endpoint]', 'the endpoint')
    .option('--all', 'every endpoint')
    .requiredOption('--reason <text>', 'why (logged, shown in the views)')
    .action((endpoint, options, command: Command) => run('trip', endpoint, options, command));
  killswitch
    .command('reset')
    .description('resume an endpoint (or all)')
    .argument('[endpoint]', 'the endpoint')
    .option('--all', 'every endpoint')
    .option('--reason <text>', 'why (logged)')
    .action((endpoint, options, command: Command) => run('reset', endpoint, options, command));
}
