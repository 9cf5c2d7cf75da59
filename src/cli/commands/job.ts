import type { Command } from 'commander';
import { type CliContext, clientOf, printJson, wantsJson } from '../cli-context.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { followJob, type Job } from '../follow-job.js';
import { table } from '../table.js';

/** Prints a finished job's outcome; throws (exit code) unless it succeeded. */
export function reportJob(context: CliContext, job: Job, json: boolean): void {
  if (json) printJson(context, { job });
  else {
    const verb = job.kind === 'redrive' ? 'moved' : 'removed';
    const total = job.progress.total ?? 0;
    context.stdout.write(
      `${job.kind} ${job.state}: ${job.progress.succeeded} of ${total} ${verb}` +
        `${job.progress.missing ? `, ${job.progress.missing} no longer there` : ''} (job ${job.id})\n`,
    );
  }
  if (job.state === 'failed') {
    const mismatch = job.error?.startsWith('expected to remove') === true;
    throw new CliError(
      `${job.kind} failed: ${job.error ?? 'unknown error'}`,
      mismatch ? ExitCode.conflict : ExitCode.failed,
    );
  }
  if (job.state === 'cancelled') throw new CliError(`${job.kind} cancelled`, ExitCode.declined);
}

/** `sluice job [id]`, `sluice job cancel <id>`: the jobs of redrives and purges. */
export function jobCommand(program: Command, context: CliContext): void {
  const job = program
    .command('job')
    .description('list redrive and purge jobs, follow one to its end, or cancel one')
    .argument('[id]', 'a job to follow (without: list the jobs the service keeps)')
    .action(async (id: string | undefined, _options, command: Command) => {
      const client = clientOf(command, context);
      if (id === undefined) {
        const { jobs } = await client.get<{ jobs: (Job & { createdAt: string })[] }>('jobs');
        if (wantsJson(command)) return printJson(context, { jobs });
        context.stdout.write(
          `${table(
            ['job', 'kind', 'endpoint', 'state', 'done', 'created'],
            jobs.map((j) => [
              j.id,
              j.kind,
              j.endpoint,
              j.state,
              `${j.progress.done}/${j.progress.total ?? '?'}`,
              j.createdAt,
            ]),
          )}\n`,
        );
        return;
      }
      const { job: now } = await client.get<{ job: Job }>(`jobs/${encodeURIComponent(id)}`);
      const done = await followJob(client, context, now, wantsJson(command));
      reportJob(context, done, wantsJson(command));
    });
  job
    .command('cancel')
    .description('stop a job after its current chunk (what it moved stays moved)')
    .argument('<id>', 'the job')
    .action(async (id: string, _options, command: Command) => {
      const client = clientOf(command, context);
      const { job: asked } = await client.post<{ job: Job }>(`jobs/${encodeURIComponent(id)}/cancel`, {});
      if (wantsJson(command)) return printJson(context, { job: asked });
      context.stdout.write(`cancel requested for job ${asked.id} (${asked.state})\n`);
    });
}
