// Starts the real servers the tests use when they are down, and waits until each answers.
// Never sleeps a fixed time: every wait polls a readiness check with a deadline.
import { execFileSync, execSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import net from 'node:net';

const log = (msg) => process.stderr.write(`[services] ${msg}\n`);

function portOpen(port, host = '127.0.0.1', timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function poll(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs / 1000} s`);
}

function commandOk(cmd) {
  try {
    execSync(cmd, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function ensurePostgres() {
  if (commandOk('pg_isready -h 127.0.0.1 -p 5432 -q')) return;
  log('PostgreSQL is down; starting it');
  const versions = readdirSync('/etc/postgresql');
  if (versions.length === 0) throw new Error('PostgreSQL is not installed (/etc/postgresql is empty)');
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', versions[0], 'main', 'start'], { stdio: 'inherit' });
  await poll('PostgreSQL', () => commandOk('pg_isready -h 127.0.0.1 -p 5432 -q'), 60_000);
}

export async function ensureRabbitMQ() {
  if ((await portOpen(5672)) && commandOk('rabbitmqctl -q await_startup --timeout 5')) return;
  log('RabbitMQ is down; starting it');
  if (!commandOk('rabbitmqctl -q status')) execSync('rabbitmq-server -detached', { stdio: 'inherit' });
  else commandOk('rabbitmqctl -q start_app');
  await poll(
    'RabbitMQ',
    async () => (await portOpen(5672)) && commandOk('rabbitmqctl -q await_startup --timeout 5'),
    120_000,
  );
}

export async function ensureKafka() {
  const { ensureKafka: start } = await import('./kafka/kafka.mjs');
  await start({ log });
}

/** Starts every server; any failure is an error (CI never skips a broker). */
export async function ensureServices() {
  const started = Date.now();
  await Promise.all([ensurePostgres(), ensureRabbitMQ(), ensureKafka()]);
  log(`PostgreSQL, RabbitMQ and Kafka ready (${Date.now() - started} ms)`);
}
