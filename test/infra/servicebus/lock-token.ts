import { randomUUID } from 'node:crypto';

/**
 * Lock tokens. The SDK turns a delivery tag into a lock token string by swapping the first
 * 8 bytes into .NET Guid order (`reorderLockToken`), while $management requests carry the
 * token string's plain RFC 4122 bytes. Tokens are keyed by that string everywhere here.
 */
export interface LockToken {
  /** Canonical lowercase uuid string, as the SDK reports it in `message.lockToken`. */
  readonly id: string;
  /** The 16-byte delivery tag to put on the transfer (.NET Guid byte order). */
  readonly deliveryTag: Buffer;
  /** The plain RFC 4122 bytes, as used in $management bodies. */
  readonly bytes: Buffer;
}

export function uuidToBytes(id: string): Buffer {
  return Buffer.from(id.replace(/-/g, ''), 'hex');
}

export function bytesToUuid(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** Swaps bytes 0-3, 4-5 and 6-7 (an involution: .NET Guid order <-> RFC order). */
export function reorderGuidBytes(b: Buffer): Buffer {
  const out = Buffer.from(b);
  out[0] = b[3] ?? 0;
  out[1] = b[2] ?? 0;
  out[2] = b[1] ?? 0;
  out[3] = b[0] ?? 0;
  out[4] = b[5] ?? 0;
  out[5] = b[4] ?? 0;
  out[6] = b[7] ?? 0;
  out[7] = b[6] ?? 0;
  return out;
}

export function newLockToken(): LockToken {
  const id = randomUUID();
  const bytes = uuidToBytes(id);
  return { id, bytes, deliveryTag: reorderGuidBytes(bytes) };
}

/** Lock token string from a $management `lock-tokens` entry (a decoded AMQP uuid). */
export function lockTokenFromManagement(value: unknown): string | undefined {
  if (Buffer.isBuffer(value) && value.length === 16) return bytesToUuid(value);
  if (typeof value === 'string') return value.toLowerCase();
  return undefined;
}

const TICKS_AT_UNIX_EPOCH = 621355968000000000n;

/** .NET ticks (100 ns since 0001-01-01) as an 8-byte big-endian buffer. */
export function toDotNetTicksBuffer(ms: number): Buffer {
  const ticks = BigInt(Math.floor(ms)) * 10000n + TICKS_AT_UNIX_EPOCH;
  const buf = Buffer.alloc(8);
  buf.writeBigInt64BE(ticks);
  return buf;
}
