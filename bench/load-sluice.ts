// Which build of Sluice a benchmark runs: the TypeScript sources under tsx (the default, what a
// contributor edits) or the compiled `dist/` (what users run; `npm run build` first). Issue 18: the
// two were measured apart, so every bench can run either with `--build dist`. Also what the benches
// share besides: the `--handler sync|async` option and the measurement of rate and CPU per message.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export type Build = 'src' | 'dist';
type Core = typeof import('../src/index.js');
type Kafka = typeof import('../transports/kafka/index.js');
type Rabbitmq = typeof import('../transports/rabbitmq/index.js');
type PostgresInbox = typeof import('../src/inbox/postgres/index.js');

const root = new URL('../', import.meta.url);

function modulePath(build: Build, sourcePath: string): string {
  if (build === 'src') return new URL(sourcePath, root).href;
  const compiled = new URL(`dist/${sourcePath}`, root);
  if (!existsSync(fileURLToPath(compiled))) {
    throw new Error(`--build dist: ${fileURLToPath(compiled)} is missing; run \`npm run build\` first`);
  }
  return compiled.href;
}

/** Parses `--build src|dist` (default src). */
export function parseBuild(value: string | undefined): Build {
  if (value === undefined || value === 'src' || value === 'dist') return value ?? 'src';
  throw new Error(`--build: expected "src" or "dist", got "${value}"`);
}

export async function loadCore(build: Build): Promise<Core> {
  return (await import(modulePath(build, 'src/index.js'))) as Core;
}

/**
 * The compiled build of another checkout (a worktree of an earlier commit, `npm run build` run in
 * it), for an A/B in one process: runs of both alternate, so that they meet the same box at the
 * same minutes (separate processes on a shared box differed by ±30 % from one to the next).
 */
export async function loadCoreAt(checkout: string): Promise<Core> {
  return (await import(compiledAt(checkout, 'src/index.js'))) as Core;
}

/** The Kafka transport of another checkout's compiled build (see {@link loadCoreAt}). */
export async function loadKafkaAt(checkout: string): Promise<Kafka> {
  return (await import(compiledAt(checkout, 'transports/kafka/index.js'))) as Kafka;
}

/** The PostgreSQL inbox of another checkout's compiled build (see {@link loadCoreAt}). */
export async function loadPostgresInboxAt(checkout: string): Promise<PostgresInbox> {
  return (await import(compiledAt(checkout, 'src/inbox/postgres/index.js'))) as PostgresInbox;
}

function compiledAt(checkout: string, sourcePath: string): string {
  const compiled = new URL(`dist/${sourcePath}`, pathToFileURL(`${resolve(checkout)}/`));
  if (!existsSync(fileURLToPath(compiled))) {
    throw new Error(`--against: ${fileURLToPath(compiled)} is missing; run \`npm run build\` in ${checkout} first`);
  }
  return compiled.href;
}

export async function loadKafka(build: Build): Promise<Kafka> {
  return (await import(modulePath(build, 'transports/kafka/index.js'))) as Kafka;
}

export async function loadPostgresInbox(build: Build): Promise<PostgresInbox> {
  return (await import(modulePath(build, 'src/inbox/postgres/index.js'))) as PostgresInbox;
}

export async function loadRabbitmq(build: Build): Promise<Rabbitmq> {
  return (await import(modulePath(build, 'transports/rabbitmq/index.js'))) as Rabbitmq;
}

/** Sluice's no-op handler in a bench: an `async` function (a promise per message) or a plain one. */
export type HandlerKind = 'sync' | 'async';

/** Parses `--handler sync|async`. */
export function parseHandlerKind(value: string): HandlerKind {
  if (value === 'sync' || value === 'async') return value;
  throw new Error(`--handler: expected "sync" or "async", got "${value}"`);
}

/** `body` as the handler of `kind`: itself, or wrapped in an `async` function. */
export function handlerOf(kind: HandlerKind, body: () => void): () => void | Promise<void> {
  return kind === 'async' ? async () => body() : body;
}

/** What a bench measured over a span: messages per second (wall clock) and CPU µs per message. */
export interface Measured {
  rate: number;
  cpuUs: number;
}

/**
 * Starts the clocks for `messages` messages; the returned function stops them. CPU is this
 * process's user + system time over the span, which a shared box disturbs far less than the rate.
 */
export function measure(messages: number): () => Measured {
  const started = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { rate: messages / ((performance.now() - started) / 1000), cpuUs: (used.user + used.system) / messages };
  };
}
