// A private RabbitMQ node for tests that must disrupt a broker (restart it, stop it under load).
// Never the shared node on 5672: other test runs use that one at the same time. Each private node
// has its own name, ports, data and log directories (a temp dir), no plugins, and its own Erlang
// cookie; it is started the way the shared one is (`rabbitmq-server -detached`), and `remove()`
// stops it and deletes its directory. Every wait polls a check with a deadline, never a fixed sleep.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = '/usr/lib/rabbitmq/bin';
const DIR_PREFIX = 'sluice-rabbitmq-';

export interface PrivateRabbitmq {
  /** `amqp://guest:guest@127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The Erlang node name, e.g. `sluice-test-1234-ab12cd@localhost`. */
  readonly node: string;
  /** Runs `rabbitmqctl` against this node only; resolves with stdout. */
  ctl(...args: string[]): Promise<string>;
  /** Stops the RabbitMQ application (every connection drops; durable queues and messages stay). */
  stopApp(): Promise<void>;
  /** Starts the application again and waits until it accepts connections. */
  startApp(): Promise<void>;
  /**
   * Freezes the node's Erlang VM (SIGSTOP): connections stay open, the kernel still accepts new
   * ones, and nothing answers (a hung broker). Throws when the node's process is not found.
   */
  freeze(): void;
  /** Lets a frozen node run on (SIGCONT); nothing when it is not frozen. */
  thaw(): void;
  /** Stops the node (frozen or not) and deletes its directory. Idempotent; call it in `afterAll`. */
  remove(): Promise<void>;
}

export interface PrivateRabbitmqOptions {
  /** How long to wait for the node to boot (a loaded 2-core machine needs ~10 s). */
  readonly startTimeoutMs?: number;
}

/** Starts a private node and waits until it accepts AMQP connections. */
export async function startPrivateRabbitmq(options: PrivateRabbitmqOptions = {}): Promise<PrivateRabbitmq> {
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  removeOrphans();
  const dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  const port = await freePort();
  let distPort = await freePort();
  while (distPort === port) distPort = await freePort();
  const node = `sluice-test-${process.pid}-${randomBytes(3).toString('hex')}@localhost`;
  writeFileSync(join(dir, 'rabbitmq.conf'), `listeners.tcp.1 = 127.0.0.1:${port}\n`);
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  writeFileSync(join(dir, 'node'), node);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // The Erlang cookie is created in (and read from) $HOME: private to this node and its CLI calls.
    HOME: dir,
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    // Not /etc/rabbitmq/rabbitmq-env.conf: it names the shared node.
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_PLUGINS_EXPAND_DIR: join(dir, 'plugins-expand'),
    RABBITMQ_PID_FILE: join(dir, 'pid'),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  const ctl = async (...args: string[]): Promise<string> => {
    const { stdout } = await run(`${BIN}/rabbitmqctl`, ['-n', node, ...args], { env, cwd: dir, timeout: 120_000 });
    return stdout;
  };
  const accepting = async (): Promise<boolean> =>
    (await portOpen(port)) &&
    (await ctl('-q', 'await_startup', '--timeout', '5').then(
      () => true,
      () => false,
    ));

  live.add(dir);
  installExitHook();
  let removed = false;
  const remove = async (): Promise<void> => {
    if (removed) return;
    removed = true;
    live.delete(dir);
    signalByPidFile(dir, 'SIGCONT'); // a frozen node would not answer `stop`
    await ctl('stop').catch(() => {});
    signalByPidFile(dir, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await run(`${BIN}/rabbitmq-server`, ['-detached'], { env, cwd: dir, timeout: 60_000 });
    await poll(`private RabbitMQ ${node}`, accepting, timeoutMs);
  } catch (error) {
    const log = readLog(dir, node);
    await remove();
    throw new Error(`${error instanceof Error ? error.message : String(error)}${log ? `\n${log}` : ''}`);
  }
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    port,
    node,
    ctl,
    async stopApp() {
      await ctl('stop_app');
    },
    async startApp() {
      await ctl('start_app');
      await poll(`private RabbitMQ ${node} after start_app`, accepting, timeoutMs);
    },
    freeze() {
      if (!signalByPidFile(dir, 'SIGSTOP')) throw new Error(`private RabbitMQ ${node}: no beam process to freeze`);
    },
    thaw() {
      signalByPidFile(dir, 'SIGCONT');
    },
    remove,
  };
}

/**
 * Private nodes left behind by a test process that died before `remove()` (killed worker): their
 * directory names the owner's pid. Stops each one whose owner is gone and deletes its directory.
 */
function removeOrphans(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const owner = Number(name.slice(DIR_PREFIX.length).split('-')[0]);
    if (!Number.isInteger(owner) || alive(owner)) continue;
    const dir = join(tmpdir(), name);
    signalByPidFile(dir, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Directories of this process's nodes not yet removed: killed when the process exits. */
const live = new Set<string>();
let exitHookInstalled = false;

/**
 * A test process that exits without `remove()` (a failed `afterAll`, `process.exit`) kills its
 * nodes, frozen or not, rather than leaving them to the next start's orphan sweep.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const dir of live) {
      signalByPidFile(dir, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/**
 * Sends `signal` to the node's beam process when it runs; false when there is none. The process is
 * the one in the node's pid file whose command line holds the node's directory (its `-home`): the
 * node name itself reaches the VM through the environment, not the command line, and a pid reused by
 * another process must not be signalled.
 */
function signalByPidFile(dir: string, signal: NodeJS.Signals): boolean {
  const file = join(dir, 'pid');
  if (!existsSync(file)) return false;
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.split('\0').includes(dir)) return false;
    process.kill(pid, signal);
    return true;
  } catch {
    return false; // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLog(dir: string, node: string): string {
  try {
    return readFileSync(join(dir, 'log', `${node}.log`), 'utf8')
      .split('\n')
      .slice(-30)
      .join('\n');
  } catch {
    return '';
  }
}

/** A port nothing listens on now (the OS picks it); a race with another process is unlikely. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function poll(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs / 1000} s`);
}
