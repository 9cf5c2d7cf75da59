/**
 * Polls `condition` until it holds or `timeoutMs` passes. Tests await outcomes with this instead of
 * sleeping a fixed time; the deadline only bounds a test that would otherwise hang.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string | (() => string) } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) {
      const what = typeof options.what === 'function' ? options.what() : options.what;
      throw new Error(`timed out waiting for ${what ?? 'condition'}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 5));
  }
}
