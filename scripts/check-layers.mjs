#!/usr/bin/env node
// The layer rule (docs/architecture.md, "Layers"): every folder of `src/` has a rank, and a file
// imports only its own folder and folders ranked below it. Transports (`transports/<kind>/`, and the
// built-in memory transport in `src/memory-transport/`) import only their own folder and
// `src/transport-core/index.ts`; `src` imports no file of `transports/`, except the config loader's
// `import()` of a transport's entry point, run only for the configured kind; a broker client or a
// database driver is imported only by its transport or store (vitest only by the conformance kit).
//
// Reads every import, re-export, `import()` and `import('…')` type of the `.ts` files with the
// TypeScript compiler's parser (a devDependency; nothing else is needed). Prints one line per broken
// rule (the file, the import, the rule) and exits 1; exits 0 when there is none.
//
//   node scripts/check-layers.mjs [--root <dir>]   (default: the repository)
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The folders of `src/`, lowest first. A folder may import the folders before it in this list, never
 * those after it. Keep docs/architecture.md ("Layers") in step.
 */
export const RANKING = [
  'internal',
  'errors',
  'transport-core',
  'memory-transport',
  'envelope',
  'contracts',
  'retry',
  'dead-letters',
  'telemetry',
  'ordering',
  'outbox',
  'inbox',
  'pipeline',
  'killswitch',
  'history',
  'health',
  'admin',
  'bus',
  'cli',
  'testing',
  // `src/index.ts`, the package's entry point: re-exports only, above everything.
  'index.ts',
];

/** Folders that hold a transport: they see the core only through its contract. */
const TRANSPORT_FOLDERS = ['src/memory-transport'];
const TRANSPORT_CONTRACT = 'src/transport-core/index.ts';
/** The one file of `src` that may load a transport's entry point (by `import()`, for the configured kind). */
const TRANSPORT_LOADER = 'src/bus/create-bus-from-config.ts';

/**
 * Optional peer dependencies and the one folder each may be imported from: a broker client only by
 * its transport, a database driver only by its store, vitest only by the conformance kit.
 */
const PACKAGE_HOMES = {
  amqplib: 'transports/rabbitmq',
  kafkajs: 'transports/kafka',
  '@azure/service-bus': 'transports/servicebus',
  pg: 'src/inbox/postgres',
  'better-sqlite3': 'src/inbox/sqlite',
  vitest: 'src/testing/conformance',
};

/** The package a bare specifier names (`@azure/service-bus/x` → `@azure/service-bus`). */
function packageOf(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Every `.ts` file under `dir` (relative to `root`, with `/`), skipping node_modules and dist. */
function sourceFiles(root, dir) {
  const out = [];
  const walk = (abs) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === 'dist') continue;
      const path = join(abs, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) out.push(relative(root, path).split(sep).join('/'));
    }
  };
  if (existsSync(join(root, dir))) walk(join(root, dir));
  return out.sort();
}

/** The module specifiers of one file, with their line and how they are imported. */
export function importsOf(fileName, text) {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found = [];
  const add = (literal, how) =>
    found.push({
      specifier: literal.text,
      how,
      line: source.getLineAndCharacterOfPosition(literal.getStart()).line + 1,
    });
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      if (ts.isStringLiteral(node.moduleSpecifier)) add(node.moduleSpecifier, 'import');
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      if (ts.isStringLiteral(node.moduleReference.expression)) add(node.moduleReference.expression, 'import');
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [first] = node.arguments;
      if (first && ts.isStringLiteralLike(first)) add(first, 'import()');
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      if (ts.isLiteralTypeNode(arg) && ts.isStringLiteral(arg.literal)) add(arg.literal, 'import type');
    } else if (ts.isModuleDeclaration(node) && ts.isStringLiteral(node.name)) {
      add(node.name, 'declare module');
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The repository file a relative specifier names (`.js` → `.ts`), relative to `root`. */
function resolveRelative(root, from, specifier) {
  const abs = resolve(root, dirname(from), specifier);
  let path = relative(root, abs).split(sep).join('/');
  if (path.endsWith('.js')) path = `${path.slice(0, -3)}.ts`;
  else if (!path.endsWith('.ts') && existsSync(join(root, path, 'index.ts'))) path = `${path}/index.ts`;
  return path;
}

/** The folder of `src` a file belongs to (`src/index.ts` → `index.ts`), or undefined outside `src`. */
function srcFolder(path) {
  if (!path.startsWith('src/')) return undefined;
  const rest = path.slice('src/'.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? rest : rest.slice(0, slash);
}

/** The transport folder a file belongs to (`transports/kafka`, `src/memory-transport`), if any. */
function transportFolder(path) {
  const m = /^transports\/[^/]+/.exec(path);
  if (m) return m[0];
  return TRANSPORT_FOLDERS.find((folder) => path.startsWith(`${folder}/`));
}

/** Every broken rule in the tree at `root`, as `{ file, line, specifier, rule }`. */
export function findViolations(root) {
  const rank = new Map(RANKING.map((folder, i) => [folder, i]));
  const files = [...sourceFiles(root, 'src'), ...sourceFiles(root, 'transports')];
  const violations = [];
  for (const file of files) {
    const fromFolder = srcFolder(file);
    const fromTransport = transportFolder(file);
    if (fromFolder !== undefined && !rank.has(fromFolder)) {
      violations.push({
        file,
        line: 1,
        specifier: '',
        rule: `src/${fromFolder} has no rank: add it to RANKING in scripts/check-layers.mjs and to docs/architecture.md`,
      });
      continue;
    }
    for (const { specifier, how, line } of importsOf(file, readFileSync(join(root, file), 'utf8'))) {
      const broken = (rule) => violations.push({ file, line, specifier, rule });
      if (!specifier.startsWith('.')) {
        const home = PACKAGE_HOMES[packageOf(specifier)];
        if (home !== undefined && !file.startsWith(`${home}/`)) {
          broken(`${packageOf(specifier)} is imported only in ${home}/ (an optional peer dependency)`);
        }
        continue;
      }
      const target = resolveRelative(root, file, specifier);

      if (fromTransport !== undefined) {
        if (target.startsWith(`${fromTransport}/`) || target === TRANSPORT_CONTRACT) continue;
        broken(
          `a transport (${fromTransport}/) imports only its own folder and ${TRANSPORT_CONTRACT} (sluice/transport)`,
        );
        continue;
      }
      if (fromFolder === undefined) continue; // transports/ outside a kind: nothing to check
      if (target.startsWith('transports/')) {
        const entryPoint = /^transports\/[^/]+\/index\.ts$/.test(target);
        if (file === TRANSPORT_LOADER && how === 'import()' && entryPoint) continue;
        broken(
          `src imports no file of transports/ (only ${TRANSPORT_LOADER} loads a transport's entry point, by import() for the configured kind)`,
        );
        continue;
      }
      const toFolder = srcFolder(target);
      if (toFolder === undefined || toFolder === fromFolder) continue;
      const to = rank.get(toFolder);
      if (to === undefined) {
        broken(
          `src/${toFolder} has no rank: add it to RANKING in scripts/check-layers.mjs and to docs/architecture.md`,
        );
      } else if (to > rank.get(fromFolder)) {
        broken(
          `layer rule: src/${fromFolder} (rank ${rank.get(fromFolder)}) imports only folders ranked below it; src/${toFolder} is rank ${to}`,
        );
      }
    }
  }
  return violations;
}

const invokedDirectly = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const at = process.argv.indexOf('--root');
  const root = at >= 0 ? resolve(process.argv[at + 1] ?? '.') : resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const violations = findViolations(root);
  for (const v of violations) {
    process.stdout.write(
      v.specifier ? `${v.file}:${v.line}: imports '${v.specifier}': ${v.rule}\n` : `${v.file}: ${v.rule}\n`,
    );
  }
  if (violations.length > 0) {
    process.stdout.write(
      `\n${violations.length} import(s) break the layer rule (see docs/architecture.md, "Layers").\n`,
    );
    process.exit(1);
  }
  process.stdout.write('layers: every import follows the ranking (docs/architecture.md, "Layers")\n');
}
