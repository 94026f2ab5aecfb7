import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/** A signed statement of one workspace's chain head, as the API returns it and as a verifier keeps it. */
export interface Digest {
  workspaceId: string;
  /** The chain position of the last entry covered (0: the chain was empty). */
  seq: number;
  /** That entry's chain hash ('' when seq is 0). */
  headHash: string;
  /** ISO-8601 UTC with milliseconds, e.g. 2026-11-26T14:00:00.000Z. */
  issuedAt: string;
  /** digestHash of the workspace's previous digest; null for its first. */
  previousDigestHash: string | null;
  keyId: string;
  /** Ed25519 signature of `canonicalDigestText(digest)`, base64. */
  signature: string;
}

export const DIGEST_FORMAT = 'audit-log-digest/v1';

/**
 * The exact text a digest's signature covers, and whose sha256 (hex) is the digest's hash (the
 * next digest's `previousDigestHash`): six lines, each ending in "\n", UTF-8, nothing else:
 *
 *   audit-log-digest/v1
 *   workspaceId=<workspace id, lowercase UUID>
 *   seq=<decimal, no leading zeros>
 *   headHash=<64 lowercase hex, or empty when seq is 0>
 *   issuedAt=<issuedAt exactly as in the digest: YYYY-MM-DDTHH:MM:SS.mmmZ>
 *   previousDigestHash=<64 lowercase hex, or empty for the workspace's first digest>
 *
 * `keyId` is not signed: it only says which published key to try.
 */
export function canonicalDigestText(d: Omit<Digest, 'keyId' | 'signature'>): string {
  return [
    DIGEST_FORMAT,
    `workspaceId=${d.workspaceId}`,
    `seq=${d.seq}`,
    `headHash=${d.headHash}`,
    `issuedAt=${d.issuedAt}`,
    `previousDigestHash=${d.previousDigestHash ?? ''}`,
    '',
  ].join('\n');
}

export function digestHash(d: Omit<Digest, 'keyId' | 'signature'>): string {
  return createHash('sha256').update(canonicalDigestText(d), 'utf8').digest('hex');
}

/** A key's id: the first 16 hex characters of the sha256 of its public key's DER (SPKI) encoding. */
export function keyIdOf(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

export function signDigest(d: Omit<Digest, 'keyId' | 'signature'>, privateKey: KeyObject): Digest {
  const signature = sign(null, Buffer.from(canonicalDigestText(d), 'utf8'), privateKey).toString('base64');
  return { ...d, keyId: keyIdOf(privateKey), signature };
}

/** Whether `publicKey` signed this digest's canonical text. Never throws on a malformed signature. */
export function digestSignatureValid(d: Digest, publicKey: KeyObject): boolean {
  try {
    return verify(null, Buffer.from(canonicalDigestText(d), 'utf8'), publicKey, Buffer.from(d.signature, 'base64'));
  } catch {
    return false;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HEX64 = /^[0-9a-f]{64}$/;
export const ISSUED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** What is wrong with a value that should be a Digest, or undefined when it is one. */
export function digestProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'digest must be an object';
  const d = value as Record<string, unknown>;
  const known = ['workspaceId', 'seq', 'headHash', 'issuedAt', 'previousDigestHash', 'keyId', 'signature'];
  const extra = Object.keys(d).filter((k) => !known.includes(k));
  if (extra.length) return `digest has unknown properties: ${extra.join(', ')}`;
  if (typeof d.workspaceId !== 'string' || !UUID.test(d.workspaceId))
    return 'digest.workspaceId must be a lowercase UUID';
  if (typeof d.seq !== 'number' || !Number.isSafeInteger(d.seq) || d.seq < 0)
    return 'digest.seq must be a whole number from 0';
  if (typeof d.headHash !== 'string' || !(d.seq === 0 ? d.headHash === '' : HEX64.test(d.headHash)))
    return 'digest.headHash must be 64 lowercase hex characters (empty when seq is 0)';
  if (typeof d.issuedAt !== 'string' || !ISSUED_AT.test(d.issuedAt) || Number.isNaN(Date.parse(d.issuedAt)))
    return 'digest.issuedAt must be an ISO-8601 UTC instant with milliseconds, e.g. 2026-11-26T14:00:00.000Z';
  if (d.previousDigestHash !== null && (typeof d.previousDigestHash !== 'string' || !HEX64.test(d.previousDigestHash)))
    return 'digest.previousDigestHash must be 64 lowercase hex characters or null';
  if (typeof d.keyId !== 'string' || !/^[0-9a-f]{16}$/.test(d.keyId))
    return 'digest.keyId must be 16 lowercase hex characters';
  if (typeof d.signature !== 'string' || !/^[A-Za-z0-9+/]{86}==$/.test(d.signature))
    return 'digest.signature must be an Ed25519 signature in base64 (88 characters)';
  return undefined;
}
