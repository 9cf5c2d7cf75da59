import type { HealthRequestHandler } from '../health/health-handler.js';
import { type AdminHandlerOptions, type AdminSource, createAdminHandler } from './admin-handler.js';
import { loadConsoleAssets } from './console-assets.js';

/**
 * The health handler with the admin API (and, with `console`, the web view) in front of it: one
 * request listener for the bus's HTTP server. Paths that are not the console's go on to `health`.
 */
export function withAdmin(
  source: AdminSource,
  health: HealthRequestHandler,
  options: Omit<AdminHandlerOptions, 'assets'> & { readonly console: boolean },
): HealthRequestHandler {
  const admin = createAdminHandler(source, {
    ...options,
    ...(options.console ? { assets: loadConsoleAssets() } : {}),
  });
  return (req, res, next) => admin(req, res, () => health(req, res, next));
}
