// Which build of Sluice a benchmark runs: the TypeScript sources under tsx (the default, what a
// contributor edits) or the compiled `dist/` (what users run; `npm run build` first). Issue 18: the
// two were measured apart, so every bench can run either with `--build dist`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type Build = 'src' | 'dist';
type Core = typeof import('../src/index.js');
type Kafka = typeof import('../transports/kafka/index.js');
type Rabbitmq = typeof import('../transports/rabbitmq/index.js');

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

export async function loadKafka(build: Build): Promise<Kafka> {
  return (await import(modulePath(build, 'transports/kafka/index.js'))) as Kafka;
}

export async function loadRabbitmq(build: Build): Promise<Rabbitmq> {
  return (await import(modulePath(build, 'transports/rabbitmq/index.js'))) as Rabbitmq;
}
