import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { HttpProblem } from '../health/http-problem.js';

/** One file of the web view, read once, with the headers it is served with. */
export interface ConsoleAsset {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

/** The web view's files by their path below `{basePath}/console`. */
export type ConsoleAssets = ReadonlyMap<string, ConsoleAsset>;

/**
 * The strictest policy the page works with: its script, style and data come from this server only;
 * no inline script or style, no plugins, not framed, no forms posted anywhere. A value from a
 * message that got into the page as markup could still run nothing.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'actions.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'endpoint-pages.js': 'text/javascript; charset=utf-8',
  'dead-letter-pages.js': 'text/javascript; charset=utf-8',
  'job-pages.js': 'text/javascript; charset=utf-8',
  'explain-page.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
};

/**
 * Reads the web view's files (the package's `console/` folder: static HTML, CSS and ES modules
 * that `console.js` imports, no build step). The folder sits two levels above this file when run from the sources
 * (`src/admin/`) and three above in the built package (`dist/src/admin/`). Only the listed files
 * are ever served: a path is looked up in a map, never joined to a folder.
 */
export function loadConsoleAssets(): ConsoleAssets {
  const folder = ['../../console/', '../../../console/']
    .map((relative) => new URL(relative, import.meta.url))
    .find((url) => existsSync(fileURLToPath(new URL('index.html', url))));
  if (!folder) throw new Error('the web console files (console/) are missing from the package');
  const security = {
    'content-security-policy': CONSOLE_CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cache-control': 'no-cache',
  };
  return new Map(
    Object.entries(FILES).map(([name, type]) => [
      name,
      { body: readFileSync(fileURLToPath(new URL(name, folder))), headers: { ...security, 'content-type': type } },
    ]),
  );
}

/** The asset for a path below the console's prefix (`/` is the page). */
export function consoleAsset(assets: ConsoleAssets, path: string): ConsoleAsset | undefined {
  const name = path === '/' ? 'index.html' : path.slice(1);
  return assets.get(name);
}

/** Answers a request below the console's prefix (`rest`) with its file: GET or HEAD only; the bare prefix redirects to `/`. */
export function serveAsset(
  req: IncomingMessage,
  res: ServerResponse,
  assets: ConsoleAssets,
  rest: string,
  prefix: string,
): void {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    throw new HttpProblem(405, 'method-not-allowed', 'use GET or HEAD');
  }
  if (rest === '') {
    res.writeHead(308, { location: `${prefix}/` });
    res.end();
    return;
  }
  const asset = consoleAsset(assets, rest);
  if (!asset) throw new HttpProblem(404, 'not-found', 'no such file');
  res.writeHead(200, {
    ...asset.headers,
    'content-length': asset.body.length,
  });
  res.end(method === 'HEAD' ? undefined : asset.body);
}
