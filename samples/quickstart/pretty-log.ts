import { Writable } from 'node:stream';

/** A readable one-line-per-event rendering of pino's JSON, for the demo's terminal only. */
export function prettyLog(): Writable {
  const skip = new Set(['level', 'time', 'pid', 'hostname', 'name', 'service', 'msg', 'err']);
  const levels: Record<number, string> = { 20: 'debug', 30: 'info ', 40: 'warn ', 50: 'error', 60: 'fatal' };
  return new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        const fields = Object.entries(entry)
          .filter(([k]) => !skip.has(k))
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ');
        const err = entry.err as { message?: string } | undefined;
        process.stdout.write(
          `${levels[entry.level as number] ?? entry.level} ${String(entry.msg)}${fields ? `  ${fields}` : ''}${err?.message ? `  error="${err.message}"` : ''}\n`,
        );
      }
      done();
    },
  });
}
