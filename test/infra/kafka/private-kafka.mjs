// A private single-node Kafka broker for a test that must stop, kill or restart its broker: never the
// shared one on 127.0.0.1:9092, which other test files (and other engineers' runs) use at the same
// time. Same jars and template as kafka.mjs; its own free ports and its own data directory under
// .run/private-<owner pid>-<id>/, removed by `remove()`.
//
//   import { startPrivateKafka } from '../../infra/kafka/private-kafka.mjs';
//   const kafka = await startPrivateKafka({ log: console.error });
//   ... kafka.brokers ...; await kafka.stop(); await kafka.start(); ...
//   await kafka.remove(); // in afterAll: stops it (SIGKILL if need be) and deletes its directory
//
// A broker whose owner died without `remove()` (a killed test run) is killed and removed by the next
// `startPrivateKafka`, and a process exit of the owner kills its brokers.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { startKafkaProxy } from './kafka-proxy.mjs';
import {
  checkJava,
  classpathArgs,
  fetchJars,
  isAlive,
  JVM_OPTS,
  KAFKA_HOST,
  kafkaAnswers,
  newClusterId,
  RUN,
  TEMPLATE,
} from './kafka.mjs';

const STOP_TIMEOUT_MS = 30_000;
const noop = () => {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Brokers of this process still running, killed if the process exits without removing them. */
const running = new Set();
let exitHookInstalled = false;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, KAFKA_HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function readPidFile(file) {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isFinite(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A broker JVM started for `dir` (guards against pid reuse). */
function isBrokerOf(pid, dir) {
  if (!pid || !isAlive(pid)) return false;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('kafka.Kafka') && cmd.includes(dir);
  } catch {
    return false;
  }
}

/** Kills and removes private brokers whose owning process is gone. */
function sweepOrphans(log) {
  let entries = [];
  try {
    entries = readdirSync(RUN).filter((name) => name.startsWith('private-'));
  } catch {
    return;
  }
  for (const name of entries) {
    const owner = Number.parseInt(name.split('-')[1] ?? '', 10);
    if (Number.isFinite(owner) && isAlive(owner)) continue;
    const dir = join(RUN, name);
    const pid = readPidFile(join(dir, 'kafka.pid'));
    if (isBrokerOf(pid, dir)) {
      log(`kafka(private): killing orphaned broker pid ${pid} in ${dir}`);
      process.kill(pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pid of running) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  });
}

/**
 * Starts a private broker on free ports (fetching the jars first if libs/ is missing).
 * @returns {Promise<import('./private-kafka.d.mts').PrivateKafka>}
 */
export async function startPrivateKafka({ log = noop, timeoutMs = 120_000, properties = {}, proxy = false } = {}) {
  mkdirSync(RUN, { recursive: true });
  sweepOrphans(log);
  const java = checkJava(log);
  fetchJars(log);
  const [port, controllerPort] = [await freePort(), await freePort()];
  // With a proxy, the broker advertises the proxy's address: every client connection goes through it.
  const front = proxy ? await startKafkaProxy({ host: KAFKA_HOST, port: 0, upstreamPort: port }) : undefined;
  const advertised = front?.port ?? port;
  const dir = join(RUN, `private-${process.pid}-${randomBytes(4).toString('hex')}`);
  const data = join(dir, 'data');
  const props = join(dir, 'server.properties');
  const logFile = join(dir, 'kafka.log');
  const pidFile = join(dir, 'kafka.pid');
  mkdirSync(dir, { recursive: true });
  const text = readFileSync(TEMPLATE, 'utf8')
    .replaceAll('@LOG_DIR@', data)
    .replaceAll(`${KAFKA_HOST}:9093`, `${KAFKA_HOST}:${controllerPort}`)
    .replaceAll(`${KAFKA_HOST}:9092`, `${KAFKA_HOST}:${port}`)
    .replace(/^advertised\.listeners=.*$/m, `advertised.listeners=PLAINTEXT://${KAFKA_HOST}:${advertised}`);
  const extra = Object.entries(properties).map(([key, value]) => `${key}=${value}\n`);
  writeFileSync(props, `${text.trimEnd()}\n${extra.join('')}`);
  const format = spawnSync(
    java,
    [...classpathArgs(), 'kafka.tools.StorageTool', 'format', '-t', newClusterId(), '-c', props],
    { encoding: 'utf8' },
  );
  if (format.status !== 0) {
    await front?.close();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`kafka(private): StorageTool format failed:\n${format.stdout}\n${format.stderr}`);
  }
  const brokers = [`${KAFKA_HOST}:${advertised}`];
  let child;
  let exited = Promise.resolve();

  const tail = () => {
    try {
      return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-30).join('\n');
    } catch {
      return '(no log)';
    }
  };

  async function start() {
    if (child) return;
    installExitHook();
    const fd = openSync(logFile, 'a');
    try {
      child = spawn(java, [...JVM_OPTS, ...classpathArgs(), 'kafka.Kafka', props], {
        cwd: dir,
        stdio: ['ignore', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    const me = child;
    running.add(me.pid);
    writeFileSync(pidFile, `${me.pid}\n`);
    let gone = false;
    exited = new Promise((resolve) => {
      me.once('exit', () => {
        gone = true;
        running.delete(me.pid);
        if (child === me) child = undefined;
        resolve();
      });
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (gone) throw new Error(`kafka(private): broker exited before it was ready. Tail of ${logFile}:\n${tail()}`);
      if (await kafkaAnswers({ timeoutMs: 2000, brokers })) break;
      if (Date.now() > deadline) {
        throw new Error(`kafka(private): broker not ready on ${brokers[0]} in ${timeoutMs} ms. Tail:\n${tail()}`);
      }
      await sleep(200);
    }
    log(`kafka(private): broker pid ${me.pid} ready on ${brokers[0]}`);
  }

  async function stop({ signal = 'SIGTERM' } = {}) {
    const me = child;
    if (!me) return;
    me.kill(signal);
    const timer = setTimeout(() => me.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
    log(`kafka(private): broker pid ${me.pid} stopped (${signal})`);
  }

  /**
   * Freezes the broker (SIGSTOP): its process stays, its sockets stay open, the kernel still
   * accepts connections, and nothing answers (a hung broker, a black hole). `thaw()` lets it run on.
   */
  function freeze() {
    if (!child) throw new Error('kafka(private): freeze() of a broker that is not running');
    child.kill('SIGSTOP');
    log(`kafka(private): broker pid ${child.pid} frozen (SIGSTOP)`);
  }

  function thaw() {
    if (!child) return;
    child.kill('SIGCONT');
    log(`kafka(private): broker pid ${child.pid} thawed (SIGCONT)`);
  }

  async function remove() {
    thaw(); // a frozen broker would not run its shutdown; SIGKILL ends it either way
    await stop({ signal: 'SIGKILL' });
    await front?.close();
    rmSync(dir, { recursive: true, force: true });
  }

  try {
    await start();
  } catch (error) {
    await remove();
    throw error;
  }
  return {
    brokers,
    port,
    dir,
    proxy: front,
    get running() {
      return child !== undefined;
    },
    start,
    stop,
    freeze,
    thaw,
    remove,
  };
}
