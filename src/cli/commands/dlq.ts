import { type Command, Option } from 'commander';
import { type CliContext, clientOf, printJson, wantsJson } from '../cli-context.js';
import { confirm } from '../confirm.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { followJob, type Job } from '../follow-job.js';
import { table, visible } from '../table.js';
import { reportJob } from './job.js';

interface Filter {
  reason?: string;
  errorType?: string;
  messageType?: string;
  group?: string;
  from?: string;
  to?: string;
}
interface SelectionOptions extends Filter {
  all?: boolean;
  max?: string;
  ids?: string[];
  yes?: boolean;
  wait?: boolean;
  message?: string;
}
interface Summary {
  id: string;
  messageId: string;
  reason: string;
  errorType?: string;
  messageType?: string;
  text: string;
  failedAt?: string;
  attempts?: number;
  group: string;
}
interface Stats {
  scanned: number;
  matched: number;
  truncated: boolean;
  reasons: { reason: string; count: number }[];
  groups: { id: string; reason: string; errorType: string; text: string; count: number; lastFailedAt?: string }[];
}

const FILTER_KEYS = ['reason', 'errorType', 'messageType', 'group', 'from', 'to'] as const;

/** The filter flags every `dlq` command that selects takes. */
function withFilter(command: Command): Command {
  return command
    .option('--reason <reason>', 'dead-letter reason (schema-violation, retries-exhausted, ...)')
    .option('--error-type <name>', "the error's class name (TypeError, ...)")
    .option('--message-type <type>', 'the message type')
    .option('--group <id>', 'a failure group (see dlq stats)')
    .option('--from <time>', 'failed at or after (RFC 3339 with offset)')
    .option('--to <time>', 'failed before (RFC 3339 with offset)');
}

function filterOf(options: Filter): Filter {
  const filter: Filter = {};
  for (const key of FILTER_KEYS) if (options[key] !== undefined) filter[key] = options[key];
  return filter;
}

function query(filter: Filter & { limit?: string; cursor?: string }): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filter)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}

const at = (endpoint: string) => `endpoints/${encodeURIComponent(endpoint)}/dead-letters`;

/** `sluice dlq list|show|stats|redrive|purge`. */
export function dlqCommand(program: Command, context: CliContext): void {
  const dlq = program.command('dlq').description("an endpoint's dead letters: list, show, stats, redrive, purge");

  withFilter(dlq.command('list'))
    .description('list dead letters, oldest first, a page at a time')
    .argument('<endpoint>', 'the endpoint')
    .option('--limit <n>', 'dead letters per page (at most 500)', '50')
    .option('--cursor <cursor>', 'the page after this (printed under the previous page)')
    .action(async (endpoint: string, options: Filter & { limit: string; cursor?: string }, command: Command) => {
      const page = await clientOf(command, context).get<{ items: Summary[]; next?: string; truncated: boolean }>(
        `${at(endpoint)}${query({ ...filterOf(options), limit: options.limit, cursor: options.cursor })}`,
      );
      if (wantsJson(command)) return printJson(context, page);
      context.stdout.write(
        `${table(
          ['id', 'message id', 'reason', 'error', 'message type', 'failed at', 'failure'],
          page.items.map((d) => [
            d.id,
            d.messageId,
            d.reason,
            d.errorType ?? '',
            d.messageType ?? '',
            d.failedAt ?? '',
            d.text,
          ]),
        )}\n`,
      );
      if (page.next) context.stdout.write(`more: --cursor ${page.next}\n`);
      if (page.truncated) context.stdout.write("the scan stopped at the service's scan limit\n");
    });

  dlq
    .command('show')
    .description('one dead letter: fault, headers and body (JSON pretty-printed, else text, else hex)')
    .argument('<endpoint>', 'the endpoint')
    .argument('<id>', 'dead-letter id (from dlq list) or message id')
    .action(async (endpoint: string, id: string, _options, command: Command) => {
      const d = await clientOf(command, context).get<{
        fault?: Record<string, unknown>;
        headers: Record<string, string>;
        body: { size: number; encoding: 'utf8' | 'hex'; text: string };
      }>(`${at(endpoint)}/messages/${encodeURIComponent(id)}`);
      if (wantsJson(command)) return printJson(context, d);
      context.stdout.write(`fault\n${table(['field', 'value'], Object.entries(d.fault ?? {}))}\n`);
      context.stdout.write(`headers\n${table(['header', 'value'], Object.entries(d.headers))}\n`);
      let body = d.body.text;
      let kind: string = d.body.encoding === 'hex' ? 'hex, not UTF-8' : 'text';
      if (d.body.encoding === 'utf8') {
        try {
          body = JSON.stringify(JSON.parse(body), null, 2);
          kind = 'JSON';
        } catch {
          // Not JSON: printed as the text it is.
        }
      }
      context.stdout.write(`body (${d.body.size} bytes, ${kind})\n${visible(body)}\n`);
    });

  withFilter(dlq.command('stats'))
    .description('counts by reason and by failure group (the error text with numbers, ids and quoted values folded)')
    .argument('<endpoint>', 'the endpoint')
    .action(async (endpoint: string, options: Filter, command: Command) => {
      const stats = await clientOf(command, context).get<Stats>(`${at(endpoint)}/stats${query(filterOf(options))}`);
      if (wantsJson(command)) return printJson(context, stats);
      context.stdout.write(
        `${stats.matched} dead letters${stats.truncated ? ` (the first ${stats.scanned} looked at)` : ''}\n`,
      );
      context.stdout.write(
        `${table(
          ['reason', 'count'],
          stats.reasons.map((r) => [r.reason, r.count]),
        )}\n`,
      );
      context.stdout.write(
        `${table(
          ['group', 'reason', 'error', 'failure', 'count', 'last'],
          stats.groups.map((g) => [g.id, g.reason, g.errorType, g.text, g.count, g.lastFailedAt ?? '']),
        )}\n`,
      );
    });

  const selecting = (command: Command) =>
    withFilter(command)
      .argument('<endpoint>', 'the endpoint')
      .option('--all', 'every dead letter waiting now')
      .option('--max <n>', 'at most n of them, the oldest first (work through a flood in batches)')
      .addOption(new Option('--ids <ids...>', 'chosen dead-letter ids (or message ids)'))
      .option('-y, --yes', 'do not ask (required when stdin is not a terminal)')
      .option('--no-wait', 'print the job and return at once instead of following it');

  selecting(dlq.command('redrive'))
    .description('move dead letters back to the endpoint (as a job with progress)')
    .requiredOption('-m, --message <text>', 'why (stamped on each copy as sluice-redrive-reason, logged)')
    .action((endpoint: string, options: SelectionOptions, command: Command) =>
      act('redrive', endpoint, options, command),
    );

  selecting(dlq.command('purge'))
    .description('remove dead letters for good (as a job with progress); asks you to type the count')
    .option('-m, --message <text>', 'why (logged)')
    .action((endpoint: string, options: SelectionOptions, command: Command) =>
      act('purge', endpoint, options, command),
    );

  const act = async (kind: 'redrive' | 'purge', endpoint: string, options: SelectionOptions, command: Command) => {
    const client = clientOf(command, context);
    const filter = filterOf(options);
    const given = [options.all === true, options.ids !== undefined, Object.keys(filter).length > 0].filter(Boolean);
    if (given.length !== 1)
      throw new CliError('choose what to take: --all, --ids, or filters (--group, --reason, ...)', ExitCode.usage);
    const max = options.max === undefined ? undefined : Number(options.max);
    if (max !== undefined && (!Number.isInteger(max) || max < 1))
      throw new CliError('--max: a whole number, at least 1', ExitCode.usage);
    if (max !== undefined && options.ids)
      throw new CliError('--max goes with --all or filters, not --ids', ExitCode.usage);
    const limited = max === undefined ? {} : { limit: max };
    let selection: unknown;
    let count: number;
    if (options.all) {
      selection = { all: true, ...limited };
      const e = await client.get<{ deadLetters: { count: number | null; error?: string } }>(
        `endpoints/${encodeURIComponent(endpoint)}`,
      );
      if (e.deadLetters.count === null)
        throw new CliError(`cannot count the dead letters: ${e.deadLetters.error}`, ExitCode.failed);
      count = e.deadLetters.count;
    } else if (options.ids) {
      selection = { ids: options.ids };
      count = new Set(options.ids).size;
    } else {
      selection = { filter, ...limited };
      count = (await client.get<Stats>(`${at(endpoint)}/stats${query(filter)}`)).matched;
    }
    if (max !== undefined) count = Math.min(count, max);
    if (count === 0) {
      context.stderr.write('nothing to do: no dead letter matches\n');
      return;
    }
    const question =
      kind === 'purge'
        ? `remove ${count} dead letters of ${endpoint} for good?`
        : `move ${count} dead letters back to ${endpoint}?`;
    await confirm(context, {
      yes: options.yes === true,
      question,
      ...(kind === 'purge' ? { typed: String(count) } : {}),
    });
    const body =
      kind === 'redrive'
        ? { selection, reason: options.message }
        : { selection, expect: count, ...(options.message ? { reason: options.message } : {}) };
    const { job } = await client.post<{ job: Job }>(`${at(endpoint)}/${kind}`, body);
    if (options.wait === false) {
      if (wantsJson(command)) return printJson(context, { job });
      context.stdout.write(`${kind} started: job ${job.id} (follow: sluice job ${job.id})\n`);
      return;
    }
    const done = await followJob(client, context, job, wantsJson(command));
    reportJob(context, done, wantsJson(command));
  };
}
