// CPU time spent by the servers a benchmark talks to (PostgreSQL's processes, RabbitMQ's Erlang VM)
// and by this process, read from /proc (Linux). Throughput on a shared box moves with whatever else
// runs; CPU per message does not, so benches print both.
import { readdirSync, readFileSync } from 'node:fs';

/** CPU seconds used so far: by process name (`postgres`, `beam.smp`) and by this process. */
export interface CpuSample {
  readonly byName: ReadonlyMap<string, number>;
  readonly self: number;
}

const TICKS_PER_SECOND = 100;

/** Reads the CPU time of every process whose name is one of `names`, with their reaped children's. */
export function sampleCpu(names: readonly string[]): CpuSample {
  const byName = new Map<string, number>(names.map((n) => [n, 0]));
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone since the listing
    }
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    const name = stat.slice(open + 1, close);
    if (!byName.has(name)) continue;
    const fields = stat.slice(close + 2).split(' ');
    // utime, stime, cutime, cstime are fields 14 to 17 of stat (1-based): 12 to 15 after the name.
    // The children's times count the backends PostgreSQL's postmaster has reaped.
    const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    byName.set(name, (byName.get(name) ?? 0) + ticks / TICKS_PER_SECOND);
  }
  const { user, system } = process.cpuUsage();
  return { byName, self: (user + system) / 1e6 };
}

/** CPU µs per message between two samples: this process and each named server. */
export function cpuPerMessage(before: CpuSample, after: CpuSample, messages: number): Record<string, number> {
  const perMessage = (seconds: number) => (seconds * 1e6) / messages;
  const result: Record<string, number> = { node: perMessage(after.self - before.self) };
  for (const [name, seconds] of after.byName) result[name] = perMessage(seconds - (before.byName.get(name) ?? 0));
  return result;
}
