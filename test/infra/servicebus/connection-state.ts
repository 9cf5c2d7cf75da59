import type { Sender } from 'rhea';

/** Per-connection bookkeeping: reply links ($cbs, $management) and authorised audiences. */
export class ConnectionState {
  readonly #replyLinks = new Map<string, Sender>();
  /** entity path (normalised, '' = namespace) -> token expiry */
  readonly #authorized = new Map<string, number>();

  addReplyLink(key: string, link: Sender): void {
    this.#replyLinks.set(key, link);
  }

  removeReplyLink(link: Sender): void {
    for (const [k, v] of this.#replyLinks) if (v === link) this.#replyLinks.delete(k);
  }

  replyLink(key: string): Sender | undefined {
    return this.#replyLinks.get(key);
  }

  authorize(entityPath: string, expiresAtMs: number): void {
    this.#authorized.set(entityPath, expiresAtMs);
  }

  /** A token for the entity itself, a parent path, or the namespace root grants access. */
  isAuthorized(entityPath: string, nowMs: number): boolean {
    for (const [path, expiry] of this.#authorized) {
      if (expiry <= nowMs) continue;
      if (path === '' || entityPath === path || entityPath.startsWith(`${path}/`)) return true;
    }
    return false;
  }
}

/** Entity path of an audience like `sb://host:port/queue/$DeadLetterQueue` (lowercased, no slashes at ends). */
export function audienceToPath(audience: string): string {
  const withoutScheme = audience.replace(/^[a-z]+:\/\//i, '');
  const slash = withoutScheme.indexOf('/');
  const path = slash < 0 ? '' : withoutScheme.slice(slash + 1);
  return path.replace(/^\/+|\/+$/g, '').toLowerCase();
}
