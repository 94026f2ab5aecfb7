import { createHash, randomBytes } from 'node:crypto';

const PREFIX = 'alog_';

/** A new opaque token (32 random bytes) and the hash that is all the database keeps of it. */
export function generateToken(): { token: string; hash: string } {
  const token = PREFIX + randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}

/** Tokens are looked up by this hash, so comparing them never depends on the secret's characters. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The token of an `Authorization: Bearer <token>` header (the scheme in any case), else undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const [scheme, token, ...rest] = (header ?? '').split(' ');
  return scheme.toLowerCase() === 'bearer' && token && rest.length === 0 ? token : undefined;
}

export function looksLikeToken(value: string): boolean {
  return value.startsWith(PREFIX) && /^[A-Za-z0-9_-]{40,100}$/.test(value);
}
