#!/usr/bin/env node
// Single-node Apache Kafka broker (KRaft, broker+controller in one JVM) for Sluice's tests,
// run straight from Apache Kafka's Maven Central jars: no Docker, no tarball.
//
//   node test/infra/kafka/kafka.mjs start    # reuse a broker on 127.0.0.1:9092, or fetch/format/spawn one
//   node test/infra/kafka/kafka.mjs stop     # SIGTERM the broker this script started (SIGKILL after 30 s)
//   node test/infra/kafka/kafka.mjs status   # does 127.0.0.1:9092 answer as Kafka? (exit 0 yes, 3 no)
//   node test/infra/kafka/kafka.mjs reset    # stop, then wipe .run/data (next start formats afresh)
//
// Library: `import { ensureKafka } from './kafka.mjs'; await ensureKafka({ log: console.error })`.
// Only node built-ins and kafkajs. See README.md next to this file.

import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const POM = join(HERE, 'pom.xml');
const LOG4J = join(HERE, 'log4j.properties');
export const TEMPLATE = join(HERE, 'server.properties.template');
const LIBS = join(HERE, 'libs');
const LIBS_MARKER = join(LIBS, '.complete');
export const RUN = join(HERE, '.run');
const DATA = join(RUN, 'data');
const SERVER_PROPS = join(RUN, 'server.properties');
const PID_FILE = join(RUN, 'kafka.pid');
const LOG_FILE = join(RUN, 'kafka.log');
const CLUSTER_ID_FILE = join(RUN, 'cluster.id');
const LOCK_FILE = join(RUN, 'start.lock');

export const KAFKA_HOST = '127.0.0.1';
export const KAFKA_PORT = 9092;
export const CONTROLLER_PORT = 9093;
export const KAFKA_BROKERS = [`${KAFKA_HOST}:${KAFKA_PORT}`];

const DEFAULT_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;
export const JVM_OPTS = [
  '-Xms256m',
  '-Xmx512m',
  '-XX:+UseG1GC',
  '-XX:MaxGCPauseMillis=20',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
];

const noop = () => {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// probing

let kafkajsModule;
async function kafkajs() {
  if (!kafkajsModule) {
    try {
      const mod = await import('kafkajs');
      kafkajsModule = mod.default ?? mod;
    } catch (err) {
      throw new Error(`kafkajs is not installed (run \`npm ci\` in the repo root): ${err.message}`);
    }
  }
  return kafkajsModule;
}

/** True when a Kafka broker answers describeCluster on 127.0.0.1:9092 (or `brokers`) within ~3 s. */
export async function kafkaAnswers({ timeoutMs = 3000, brokers = KAFKA_BROKERS } = {}) {
  const { Kafka, logLevel } = await kafkajs();
  const kafka = new Kafka({
    clientId: 'sluice-kafka-probe',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: Math.min(1000, timeoutMs),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  });
  const admin = kafka.admin({ retry: { retries: 0 } });
  let timer;
  try {
    const attempt = (async () => {
      await admin.connect();
      const cluster = await admin.describeCluster();
      return cluster.brokers.length > 0;
    })();
    attempt.catch(noop);
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs + 500);
    });
    return await Promise.race([attempt, timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    await admin.disconnect().catch(noop);
  }
}

function portOpen(port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: KAFKA_HOST, port });
    const done = (open) => {
      sock.destroy();
      resolve(open);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

function portOwner(port) {
  const r = spawnSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const line = r.status === 0 ? r.stdout.trim().split('\n')[0] : '';
  const m = /users:\(\((.*?)\)\)/.exec(line ?? '');
  return m ? ` (listener: ${m[1]})` : '';
}

// ---------------------------------------------------------------------------------------------
// process helpers

export function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Is pid a live broker JVM started by this script (guards against pid reuse)? */
function isOurBroker(pid) {
  if (!pid || !isAlive(pid)) return false;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('kafka.Kafka') && cmd.includes(SERVER_PROPS);
  } catch {
    return true; // no /proc (not Linux): trust the pid file
  }
}

function readPid() {
  try {
    const pid = Number.parseInt(readFileSync(PID_FILE, 'utf8').trim(), 10);
    return Number.isFinite(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function logTail(lines = 40) {
  try {
    const all = readFileSync(LOG_FILE, 'utf8').trimEnd().split('\n');
    return all.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function run(cmd, args, what, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) {
    if (r.error.code === 'ENOENT') throw new Error(`${what}: \`${cmd}\` not found on PATH`);
    throw new Error(`${what}: ${r.error.message}`);
  }
  return r;
}

function javaBin() {
  const home = process.env.JAVA_HOME;
  if (home && existsSync(join(home, 'bin', 'java'))) return join(home, 'bin', 'java');
  return 'java';
}

export function checkJava(log) {
  const java = javaBin();
  const r = run(java, ['-version'], 'java not found (need a JDK/JRE 17+ for Kafka 3.9)');
  const m = /version "(\d+)(?:\.(\d+))?/.exec(r.stderr ?? '');
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : undefined;
  if (r.status !== 0) throw new Error(`\`${java} -version\` failed:\n${r.stderr}`);
  if (major !== undefined && major < 11) throw new Error(`java ${major} is too old: Kafka 3.9 needs 11+, use 17`);
  log(`kafka: using ${java} (java ${major ?? '?'})`);
  return java;
}

// ---------------------------------------------------------------------------------------------
// jars

function pomHash() {
  return createHash('sha256').update(readFileSync(POM)).digest('hex');
}

function libsComplete() {
  try {
    const marker = JSON.parse(readFileSync(LIBS_MARKER, 'utf8'));
    if (marker.pom !== pomHash()) return false;
    const present = new Set(readdirSync(LIBS));
    return marker.jars.length > 0 && marker.jars.every((j) => present.has(j));
  } catch {
    return false;
  }
}

export function fetchJars(log) {
  if (libsComplete()) return;
  log('kafka: fetching broker jars with Maven (cached in ~/.m2 after the first time)...');
  const started = Date.now();
  mkdirSync(RUN, { recursive: true });
  const tmp = join(RUN, `libs.tmp-${process.pid}`); // .run/ is gitignored: no stray dir on a crash
  rmSync(tmp, { recursive: true, force: true });
  const r = run(
    'mvn',
    [
      '-B',
      '-q',
      '-f',
      POM,
      'org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies',
      '-DincludeScope=runtime',
      `-DoutputDirectory=${tmp}`,
    ],
    'mvn not found (install Maven 3.8+; it fetches the Kafka jars from Maven Central)',
    { cwd: HERE },
  );
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`mvn failed to fetch the Kafka jars (exit ${r.status}):\n${r.stdout}\n${r.stderr}`.trim());
  }
  const jars = readdirSync(tmp).filter((f) => f.endsWith('.jar'));
  if (!jars.some((j) => /^kafka_2\.13-.*\.jar$/.test(j))) {
    throw new Error(`mvn finished but ${tmp} has no kafka_2.13 jar (got: ${jars.join(', ')})`);
  }
  writeFileSync(join(tmp, '.complete'), JSON.stringify({ pom: pomHash(), jars }, null, 2));
  rmSync(LIBS, { recursive: true, force: true });
  renameSync(tmp, LIBS);
  log(`kafka: fetched ${jars.length} jars in ${Date.now() - started} ms`);
}

// ---------------------------------------------------------------------------------------------
// config + storage

function writeServerProperties() {
  const text = readFileSync(TEMPLATE, 'utf8').replaceAll('@LOG_DIR@', DATA);
  writeFileSync(SERVER_PROPS, text);
}

/** Kafka Uuid text form: base64url (no padding) of 16 random bytes, never starting with '-'. */
export function newClusterId() {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function clusterIdFromMeta() {
  try {
    const m = /^cluster\.id=(.+)$/m.exec(readFileSync(join(DATA, 'meta.properties'), 'utf8'));
    return m?.[1]?.trim();
  } catch {
    return undefined;
  }
}

function chooseClusterId() {
  // A formatted data dir wins: its cluster id is the one the broker will accept.
  let id = clusterIdFromMeta();
  if (!id) {
    try {
      id = readFileSync(CLUSTER_ID_FILE, 'utf8').trim() || undefined;
    } catch {}
  }
  id ??= newClusterId();
  writeFileSync(CLUSTER_ID_FILE, `${id}\n`);
  return id;
}

export function classpathArgs() {
  return ['-cp', `${LIBS}/*`, `-Dlog4j.configuration=${pathToFileURL(LOG4J).href}`];
}

function formatStorage(java, log) {
  const started = Date.now();
  const attempt = () =>
    run(
      java,
      [
        ...classpathArgs(),
        'kafka.tools.StorageTool',
        'format',
        '-t',
        chooseClusterId(),
        '-c',
        SERVER_PROPS,
        '--ignore-formatted',
      ],
      'java not found',
    );
  let r = attempt();
  if (r.status !== 0) {
    // e.g. "Invalid cluster.id in: .../meta.properties" or a dir from another Kafka version/node id.
    log(`kafka: format failed, wiping ${DATA} and formatting again:\n${(r.stderr || r.stdout).trim()}`);
    rmSync(DATA, { recursive: true, force: true });
    rmSync(CLUSTER_ID_FILE, { force: true });
    r = attempt();
    if (r.status !== 0) {
      throw new Error(`kafka StorageTool format failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`.trim());
    }
  }
  log(`kafka: storage ${r.stdout.trim() || 'ready'} (${Date.now() - started} ms)`);
}

// ---------------------------------------------------------------------------------------------
// start / wait / stop

function spawnBroker(java, log) {
  if (existsSync(LOG_FILE)) renameSync(LOG_FILE, `${LOG_FILE}.prev`);
  const fd = openSync(LOG_FILE, 'w');
  let child;
  try {
    child = spawn(java, [...JVM_OPTS, ...classpathArgs(), 'kafka.Kafka', SERVER_PROPS], {
      cwd: RUN,
      detached: true, // own session: outlives the test command that started it
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const state = { exited: false, code: null, signal: null, error: undefined };
  child.once('error', (err) => {
    state.exited = true;
    state.error = err;
  });
  child.once('exit', (code, signal) => {
    state.exited = true;
    state.code = code;
    state.signal = signal;
  });
  child.unref();
  if (child.pid) writeFileSync(PID_FILE, `${child.pid}\n`);
  log(`kafka: spawned broker pid ${child.pid}, log ${LOG_FILE}`);
  return { pid: child.pid, state };
}

async function waitReady({ pid, state }, deadline, log) {
  const started = Date.now();
  for (;;) {
    if (state?.exited || (pid && !isAlive(pid))) {
      rmSync(PID_FILE, { force: true });
      const how = state?.error
        ? state.error.message
        : `exit code ${state?.code ?? '?'}${state?.signal ? `, signal ${state.signal}` : ''}`;
      throw new Error(`kafka broker exited before it was ready (${how}). Tail of ${LOG_FILE}:\n${logTail()}`);
    }
    if (await kafkaAnswers({ timeoutMs: 2000 })) {
      log(`kafka: broker ready on ${KAFKA_BROKERS[0]} after ${Date.now() - started} ms`);
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `kafka broker (pid ${pid}) not ready on ${KAFKA_BROKERS[0]} within the timeout. Tail of ${LOG_FILE}:\n${logTail()}`,
      );
    }
    await sleep(200);
  }
}

async function acquireLock(deadline) {
  for (;;) {
    try {
      const fd = openSync(LOCK_FILE, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(LOCK_FILE, { force: true });
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let holder;
    try {
      holder = Number.parseInt(readFileSync(LOCK_FILE, 'utf8'), 10);
    } catch {}
    if (!holder || !isAlive(holder)) {
      rmSync(LOCK_FILE, { force: true }); // stale
      continue;
    }
    if (await kafkaAnswers({ timeoutMs: 1000 })) return undefined; // another process got it up
    if (Date.now() > deadline) throw new Error(`timed out waiting for process ${holder} to start kafka`);
    await sleep(250);
  }
}

/**
 * Make sure a Kafka broker answers on 127.0.0.1:9092. Reuses one that already answers; otherwise
 * fetches jars (only if libs/ is missing or stale), formats storage and spawns a detached broker.
 * @returns {Promise<{ brokers: string[], reused: boolean, pid?: number }>}
 */
export async function ensureKafka({ log = noop, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const deadline = Date.now() + timeoutMs;
  if (await kafkaAnswers()) {
    log(`kafka: reusing broker on ${KAFKA_BROKERS[0]}`);
    return { brokers: [...KAFKA_BROKERS], reused: true, pid: readPid() };
  }
  mkdirSync(RUN, { recursive: true });
  const release = await acquireLock(deadline);
  if (!release) return { brokers: [...KAFKA_BROKERS], reused: true, pid: readPid() };
  try {
    // A broker we started earlier may still be starting (or hung): wait for it, don't double-spawn.
    const existing = readPid();
    if (existing && isOurBroker(existing)) {
      log(`kafka: broker pid ${existing} from ${PID_FILE} is alive, waiting for it`);
      await waitReady({ pid: existing }, deadline, log);
      return { brokers: [...KAFKA_BROKERS], reused: true, pid: existing };
    }
    if (existing) rmSync(PID_FILE, { force: true });

    for (const port of [KAFKA_PORT, CONTROLLER_PORT]) {
      if (await portOpen(port)) {
        throw new Error(
          `port ${port} on ${KAFKA_HOST} is in use by something that is not a Kafka broker answering on ` +
            `${KAFKA_BROKERS[0]}${portOwner(port)}; stop it or free the port`,
        );
      }
    }

    const java = checkJava(log);
    fetchJars(log);
    writeServerProperties();
    formatStorage(java, log);
    const broker = spawnBroker(java, log);
    await waitReady(broker, deadline, log);
    return { brokers: [...KAFKA_BROKERS], reused: false, pid: broker.pid };
  } finally {
    release();
  }
}

/** Stop the broker this script started (pid file). Returns true if one was stopped. */
export async function stopKafka({ log = noop, timeoutMs = STOP_TIMEOUT_MS } = {}) {
  const pid = readPid();
  if (!pid) {
    log(`kafka: no pid file (${PID_FILE}); nothing to stop`);
    return false;
  }
  if (!isOurBroker(pid)) {
    log(`kafka: pid ${pid} is not running (or is not our broker); removing stale pid file`);
    rmSync(PID_FILE, { force: true });
    return false;
  }
  log(`kafka: SIGTERM broker pid ${pid}`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) {
    log(`kafka: pid ${pid} still alive after ${timeoutMs} ms, SIGKILL`);
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(50);
  }
  rmSync(PID_FILE, { force: true });
  log('kafka: stopped');
  return true;
}

// ---------------------------------------------------------------------------------------------
// CLI

async function main(cmd) {
  const log = (msg) => console.error(msg);
  switch (cmd) {
    case 'start': {
      const started = Date.now();
      const r = await ensureKafka({ log });
      console.log(
        `kafka ${r.reused ? 'already running' : 'started'} on ${r.brokers.join(',')}` +
          `${r.pid ? ` (pid ${r.pid})` : ''} in ${Date.now() - started} ms`,
      );
      return 0;
    }
    case 'stop':
      await stopKafka({ log });
      return 0;
    case 'reset':
      await stopKafka({ log });
      rmSync(DATA, { recursive: true, force: true });
      rmSync(CLUSTER_ID_FILE, { force: true });
      console.log(`kafka: stopped and wiped ${DATA}`);
      return 0;
    case 'status': {
      const up = await kafkaAnswers();
      const pid = readPid();
      const ours = pid && isOurBroker(pid) ? ` (pid ${pid} from ${PID_FILE})` : '';
      console.log(up ? `kafka answers on ${KAFKA_BROKERS[0]}${ours}` : `kafka does not answer on ${KAFKA_BROKERS[0]}`);
      return up ? 0 : 3;
    }
    default:
      console.error('usage: node test/infra/kafka/kafka.mjs start|stop|status|reset');
      return 2;
  }
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();

if (invokedDirectly) {
  main(process.argv[2]).then(
    (code) => process.exit(code),
    (err) => {
      console.error(`kafka: ${err instanceof Error ? err.message : err}`);
      process.exit(1);
    },
  );
}
