import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * A PostgreSQL server of a test's own, for faults that stop, restart or cut off the database: the
 * shared server on 5432 is never disrupted. `initdb` into a temporary directory, `pg_ctl` on a
 * free port with trust authentication, the data directory removed by `destroy()` (and, should the
 * test process die first, by an exit hook). Run as the `postgres` user when the tests run as root
 * (PostgreSQL refuses to run as root).
 *
 * The shape — start, disrupt (`stop`, `start`, `terminate`), always clean up — is the one other
 * private servers for fault tests follow.
 */
export interface PrivatePostgres {
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres`, plus query parameters (`application_name=...`). */
  url(params?: Record<string, string>): string;
  /** Starts the server (again) and waits until it accepts connections. The event loop runs meanwhile. */
  start(): Promise<void>;
  /**
   * `fast`: sessions are ended (FATAL 57P01), then a clean shutdown. `immediate`: like a crash.
   * Resolves once the server is down; the event loop (the consumer under test) runs meanwhile.
   */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  readonly running: boolean;
  /** Ends every session whose `application_name` is `name` (`pg_terminate_backend`); returns how many. */
  terminate(name: string): Promise<number>;
  /** Runs one statement on a fresh connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Stops the server and removes its directory. Idempotent. */
  destroy(): void;
}

const execFileAsync = promisify(execFile);
const alive = new Set<() => void>();
let hooked = false;

function binDir(): string {
  const versions = readdirSync('/usr/lib/postgresql')
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
  return `/usr/lib/postgresql/${versions[0]}/bin`;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = binDir();
  const root = mkdtempSync(join(tmpdir(), 'sluice-pg-'));
  const data = join(root, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(root, uid, gid);
  }
  const command = (tool: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
  const run = (tool: string, args: string[]) => {
    const [cmd, all] = command(tool, args);
    return execFileSync(cmd, all, { stdio: ['ignore', 'pipe', 'pipe'], cwd: root }).toString();
  };
  const runAsync = async (tool: string, args: string[]) => {
    const [cmd, all] = command(tool, args);
    await execFileAsync(cmd, all, { cwd: root });
  };
  const port = await freePort();
  let running = false;
  let destroyed = false;
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const options = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${root}`,
    // Faster, and safe for a crash of the server alone (the OS keeps what was written). Never
    // synchronous_commit=off: a crash (immediate stop) would then lose acknowledged commits.
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c max_connections=60',
  ].join(' ');

  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    if (!running) return;
    await runAsync('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
    running = false;
  };
  const destroy = () => {
    if (destroyed) return;
    destroyed = true;
    alive.delete(destroy);
    try {
      if (running) run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
    } catch {
      // Already down: nothing to stop.
    }
    running = false;
    rmSync(root, { recursive: true, force: true });
  };
  const start = async () => {
    if (running) return;
    await runAsync('pg_ctl', ['-D', data, '-l', join(root, 'server.log'), '-o', options, '-w', '-t', '60', 'start']);
    running = true;
  };
  alive.add(destroy);
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const d of [...alive]) d();
    });
  }
  try {
    await start();
  } catch (error) {
    destroy();
    throw error;
  }
  const url = (params: Record<string, string> = {}) => {
    const query = new URLSearchParams(params).toString();
    return `postgres://postgres@127.0.0.1:${port}/postgres${query ? `?${query}` : ''}`;
  };
  const query = async <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => {
    const client = new pg.Client({ connectionString: url(), connectionTimeoutMillis: 10_000 });
    await client.connect();
    try {
      return await client.query<R>(text, values);
    } finally {
      await client.end();
    }
  };
  return {
    port,
    url,
    start,
    stop,
    get running() {
      return running;
    },
    async terminate(name: string) {
      const { rows } = await query<{ n: number }>(
        'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [name],
      );
      return rows[0]?.n ?? 0;
    },
    query,
    destroy,
  };
}
