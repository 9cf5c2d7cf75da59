import { createHmac, timingSafeEqual } from 'node:crypto';

export type SasVerification =
  | { readonly ok: true; readonly audience: string; readonly expiresAtMs: number }
  | { readonly ok: false; readonly reason: string };

/**
 * Verifies a `SharedAccessSignature sr=..&sig=..&se=..&skn=..` token the way Service Bus does:
 * HMAC-SHA256 with the key (its UTF-8 bytes) over `<url-encoded audience>\n<expiry>`.
 */
export function verifySasToken(
  token: string,
  expected: { keyName: string; key: string; nowMs: number },
): SasVerification {
  const prefix = 'SharedAccessSignature ';
  if (!token.startsWith(prefix)) return { ok: false, reason: 'Token is not a SharedAccessSignature.' };
  const fields = new Map<string, string>();
  for (const part of token.slice(prefix.length).split('&')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const sr = fields.get('sr');
  const sig = fields.get('sig');
  const se = fields.get('se');
  const skn = fields.get('skn');
  if (sr === undefined || sig === undefined || se === undefined || skn === undefined) {
    return { ok: false, reason: 'Malformed SharedAccessSignature token.' };
  }
  if (safeDecode(skn) !== expected.keyName) {
    return {
      ok: false,
      reason: `InvalidSignature: The token has an invalid signature (unknown key name '${safeDecode(skn)}').`,
    };
  }
  const expirySeconds = Number(se);
  if (!Number.isFinite(expirySeconds)) return { ok: false, reason: 'Malformed token expiry.' };
  if (expirySeconds * 1000 <= expected.nowMs) return { ok: false, reason: 'ExpiredToken: The token is expired.' };
  const computed = createHmac('sha256', expected.key).update(`${sr}\n${se}`).digest();
  const given = Buffer.from(safeDecode(sig), 'base64');
  if (given.length !== computed.length || !timingSafeEqual(given, computed)) {
    return { ok: false, reason: 'InvalidSignature: The token has an invalid signature.' };
  }
  return { ok: true, audience: safeDecode(sr), expiresAtMs: expirySeconds * 1000 };
}

/** Builds a SAS token (used by the emulator's own helpers and tests). */
export function createSasToken(audience: string, keyName: string, key: string, expiresAtMs: number): string {
  const sr = encodeURIComponent(audience);
  const se = Math.floor(expiresAtMs / 1000);
  const sig = createHmac('sha256', key).update(`${sr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=${encodeURIComponent(keyName)}`;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
