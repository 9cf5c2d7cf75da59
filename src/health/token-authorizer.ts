import { createHash, timingSafeEqual } from 'node:crypto';

/** What a caller may do: `admin` (read and act), `read` (the detailed views), `none`. */
export type Access = 'admin' | 'read' | 'none';

/** The answer for one request's `Authorization` header. */
export interface TokenCheck {
  readonly access: Access;
  /**
   * A bearer token was presented: with `access: 'none'` it matched no configured token, which
   * deserves a 403 (a wrong token), not a 401 (no token).
   */
  readonly presented: boolean;
}

/**
 * Decides a caller's access from its bearer token. Used by the health routes; built to be shared
 * by every route on the bus's HTTP server that needs a token.
 */
export interface TokenAuthorizer {
  /** An admin token is configured: without one, actions are off. */
  readonly hasAdminToken: boolean;
  /** A read token is configured: the detailed views then need a token. */
  readonly hasReadToken: boolean;
  /** Never throws; compares in constant time whatever the header holds. */
  check(authorization: string | readonly string[] | undefined): TokenCheck;
}

/** SHA-256 of a token: what an authorizer keeps instead of the token itself. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * An authorizer over the digests (see {@link tokenDigest}) of the admin token and the read token,
 * either of which may be absent. `Authorization: Bearer <token>` is the only accepted form; any
 * other header counts as no token. The presented token is hashed and compared with both digests
 * with `timingSafeEqual`, both always, so that the time taken says nothing about the tokens, their
 * lengths or which one matched. The admin token gives `admin`, the read token `read`.
 */
export function createTokenAuthorizer(digests: {
  readonly admin?: Buffer | undefined;
  readonly read?: Buffer | undefined;
}): TokenAuthorizer {
  const { admin, read } = digests;
  return {
    hasAdminToken: admin !== undefined,
    hasReadToken: read !== undefined,
    check(authorization) {
      const header = typeof authorization === 'string' ? authorization : undefined;
      const bearer = header === undefined ? undefined : BEARER.exec(header)?.[1];
      if (bearer === undefined) return { access: 'none', presented: false };
      const digest = tokenDigest(bearer);
      const isAdmin = admin !== undefined && timingSafeEqual(digest, admin);
      const isReader = read !== undefined && timingSafeEqual(digest, read);
      return { access: isAdmin ? 'admin' : isReader ? 'read' : 'none', presented: true };
    },
  };
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;
