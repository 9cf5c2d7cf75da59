import type { Command } from 'commander';
import { type CliContext, clientOf, printJson, wantsJson } from '../cli-context.js';
import { table } from '../table.js';

interface EndpointsAnswer {
  state: string;
  transport: { kind: string; state: string };
  outbox?: { depth: number; oldestAgeMs: number; movedAside: number; readAt?: string };
  endpoints: {
    name: string;
    state: string;
    inFlight: number;
    counters: { received: number; completed: number; deadLettered: number; retried: number };
    killSwitch: { state: string; reason?: string };
    consumer: { state: string; paused: boolean };
    deadLetters: { count: number | null; error?: string };
  }[];
}

/** `sluice endpoints`: every endpoint's state, kill switch and dead-letter count; the outbox's depth and lag. */
export function endpointsCommand(program: Command, context: CliContext): void {
  program
    .command('endpoints')
    .description('list the endpoints: state, consumer, counters, kill switch, dead letters')
    .action(async (_options, command: Command) => {
      const answer = await clientOf(command, context).get<EndpointsAnswer>('endpoints');
      if (wantsJson(command)) return printJson(context, answer);
      context.stdout.write(`bus ${answer.state} · transport ${answer.transport.kind} ${answer.transport.state}\n`);
      const { outbox } = answer;
      if (outbox) {
        context.stdout.write(
          `outbox: ${outbox.depth} waiting, oldest ${(outbox.oldestAgeMs / 1000).toFixed(1)} s, ` +
            `${outbox.movedAside} moved aside${outbox.readAt ? ` (read ${outbox.readAt})` : ''}\n`,
        );
      }
      context.stdout.write(
        `${table(
          [
            'endpoint',
            'state',
            'consumer',
            'in flight',
            'received',
            'completed',
            'dead-lettered',
            'kill switch',
            'dead letters',
          ],
          answer.endpoints.map((e) => [
            e.name,
            e.state,
            `${e.consumer.state}${e.consumer.paused ? ' (paused)' : ''}`,
            e.inFlight,
            e.counters.received,
            e.counters.completed,
            e.counters.deadLettered,
            e.killSwitch.reason ? `${e.killSwitch.state}: ${e.killSwitch.reason}` : e.killSwitch.state,
            e.deadLetters.count ?? `? (${e.deadLetters.error ?? 'no answer'})`,
          ]),
        )}\n`,
      );
    });
}
