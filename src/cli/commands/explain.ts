import type { Command } from 'commander';
import type { ExplainEntry, Explanation, MessageExplanation } from '../../history/explain.js';
import { type CliContext, clientOf, printJson, wantsJson } from '../cli-context.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { table, visible } from '../table.js';

interface ExplainOptions {
  endpoint?: string;
  limit?: string;
  since?: string;
  message?: string;
}

/**
 * `sluice explain <key>` and `sluice explain --message <id>`: a key's timeline (or one message's
 * path) from the service's history. Exit 3 when nothing at all is known (no entry, no guard state).
 */
export function explainCommand(program: Command, context: CliContext): void {
  program
    .command('explain')
    .description("why an entity is in its state: the key's timeline, oldest first (or where one message went)")
    .argument('[key]', 'the entity key (the envelope key, CloudEvents subject)')
    .option('--endpoint <name>', 'only this endpoint')
    .option('--limit <n>', 'the newest n entries (at most 1000)', '100')
    .option('--since <time>', 'only entries recorded at or after (RFC 3339 with offset)')
    .option('--message <id>', 'explain one message instead: where it went on every endpoint')
    .action(async (key: string | undefined, options: ExplainOptions, command: Command) => {
      if ((key === undefined) === (options.message === undefined)) {
        throw new CliError('give a key, or --message <id> (not both)', ExitCode.usage);
      }
      const client = clientOf(command, context);
      if (options.message !== undefined) {
        const answer = await client.get<MessageExplanation>(`explain/messages/${encodeURIComponent(options.message)}`);
        if (wantsJson(command)) printJson(context, answer);
        else {
          context.stdout.write(`message ${visible(answer.messageId)}\n`);
          printEntries(context, answer.entries, true);
          printScans(context, answer);
        }
        if (answer.entries.length === 0) throw new CliError('nothing recorded for this message', ExitCode.notFound);
        return;
      }
      const params = new URLSearchParams();
      if (options.endpoint !== undefined) params.set('endpoint', options.endpoint);
      if (options.limit !== undefined) params.set('limit', options.limit);
      if (options.since !== undefined) params.set('since', options.since);
      const query = params.toString();
      const answer = await client.get<Explanation>(
        `explain/keys/${encodeURIComponent(key as string)}${query ? `?${query}` : ''}`,
      );
      if (wantsJson(command)) printJson(context, answer);
      else {
        context.stdout.write(`key ${visible(answer.key)}\n`);
        for (const g of answer.guard) {
          const last = g.lastApplied;
          const state = last
            ? `${last.tombstone ? 'deleted' : 'at'} ${last.occurredAt} by message ${last.messageId}`
            : 'no version recorded';
          context.stdout.write(
            `  ${visible(g.endpoint)}: ${visible(state)}${g.history ? '' : ' (this endpoint keeps no history)'}\n`,
          );
        }
        printEntries(context, answer.entries, false);
        printScans(context, answer);
      }
      if (answer.entries.length === 0 && answer.guard.every((g) => g.lastApplied === null)) {
        throw new CliError('nothing recorded for this key', ExitCode.notFound);
      }
    });
}

function printEntries(context: CliContext, entries: readonly ExplainEntry[], withKey: boolean): void {
  if (entries.length === 0) {
    context.stdout.write('no entries\n');
    return;
  }
  context.stdout.write(
    `${table(
      ['recorded at', 'endpoint', ...(withKey ? ['key'] : []), 'message', 'type', 'what happened', 'caused'],
      entries.map((e) => [
        e.recordedAt,
        e.endpoint,
        ...(withKey ? [e.key] : []),
        e.messageId,
        e.messageType,
        e.summary,
        e.caused.map((c) => `${c.destinationKind} ${c.messageType} (${c.messageId})`).join('\n'),
      ]),
    )}\n`,
  );
  for (const e of entries) if (e.hint) context.stdout.write(`hint: ${visible(e.hint)}\n`);
}

function printScans(context: CliContext, answer: Pick<Explanation, 'deadLetters'>): void {
  for (const s of answer.deadLetters) {
    if (s.error) context.stdout.write(`dead letters of ${visible(s.endpoint)} not read: ${visible(s.error)}\n`);
    else if (s.truncated)
      context.stdout.write(`dead letters of ${visible(s.endpoint)}: only the first ${s.scanned} looked at\n`);
  }
}
