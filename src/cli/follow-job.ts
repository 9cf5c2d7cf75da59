import { SingleBar } from 'cli-progress';
import type { AdminClient } from './admin-client.js';
import type { CliContext } from './cli-context.js';
import { CliError, ExitCode } from './exit-codes.js';

/** The job as the admin API shows it (the fields the command reads). */
export interface Job {
  readonly id: string;
  readonly kind: 'redrive' | 'purge';
  readonly endpoint: string;
  readonly state: 'selecting' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  readonly progress: { total: number | null; done: number; succeeded: number; missing: number };
  readonly error?: string;
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Follows a job to its end through the API's event stream (Server-Sent Events, read with fetch so
 * that the token goes in a header), drawing a progress bar on stderr: animated on a terminal, a
 * line every half second otherwise (logs of scripts). A dropped stream is picked up again by polling
 * the job. Ctrl-C stops following, not the job.
 */
export async function followJob(client: AdminClient, context: CliContext, first: Job, quiet: boolean): Promise<Job> {
  const bar = quiet
    ? undefined
    : new SingleBar({
        stream: context.stderr,
        format: `${first.kind} ${first.endpoint} [{bar}] {value}/{total} · {succeeded} ${first.kind === 'redrive' ? 'moved' : 'removed'} · {missing} gone · {state}`,
        noTTYOutput: !context.stderr.isTTY,
        notTTYSchedule: 500,
        hideCursor: context.stderr.isTTY === true,
      });
  const show = (job: Job) => {
    if (!bar) return;
    const payload = { succeeded: job.progress.succeeded, missing: job.progress.missing, state: job.state };
    bar.setTotal(job.progress.total ?? 0);
    bar.update(job.progress.done, payload);
  };
  bar?.start(first.progress.total ?? 0, first.progress.done, {
    succeeded: first.progress.succeeded,
    missing: first.progress.missing,
    state: first.state,
  });
  const interrupted = new AbortController();
  const onSigint = () => interrupted.abort();
  process.once('SIGINT', onSigint);
  try {
    let job = first;
    while (!FINISHED.has(job.state)) {
      job = await untilStreamEnds(client, job, show, interrupted.signal).catch(async (error: unknown) => {
        if (interrupted.signal.aborted) throw error;
        // The stream broke (a proxy, a restart of the connection): ask for the job instead.
        await new Promise((resolve) => setTimeout(resolve, 500));
        return (await client.get<{ job: Job }>(`jobs/${job.id}`)).job;
      });
      show(job);
    }
    return job;
  } catch (error) {
    if (interrupted.signal.aborted) {
      throw new CliError(
        `stopped following; job ${first.id} goes on in the service (sluice job ${first.id}; sluice job cancel ${first.id})`,
        ExitCode.interrupted,
      );
    }
    throw error;
  } finally {
    process.off('SIGINT', onSigint);
    bar?.stop();
  }
}

/** Reads the job's event stream until it ends; returns the last view seen. */
async function untilStreamEnds(
  client: AdminClient,
  job: Job,
  show: (job: Job) => void,
  signal: AbortSignal,
): Promise<Job> {
  const response = await fetch(client.url(`jobs/${job.id}/events`), {
    headers: { ...client.readHeaders(), accept: 'text/event-stream' },
    signal,
  });
  if (!response.ok || !response.body) throw new Error(`event stream answered HTTP ${response.status}`);
  let last = job;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end !== -1) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice(6))
        .join('\n');
      if (data) {
        last = JSON.parse(data) as Job;
        show(last);
      }
      end = buffer.indexOf('\n\n');
    }
  }
  return last;
}
