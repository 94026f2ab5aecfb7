import { createPublicKey, type KeyObject } from 'node:crypto';
import { type Digest, digestProblem, digestSignatureValid, keyIdOf } from './audit-digest';
import { type ChainedEntryFields, chainHash, type JsonValue, JsonNumber, parseJson } from './chain-hash';

export interface OfflineReport {
  ok: boolean;
  /** One line per check: "PASS …", "FAIL …" or "NOTE …". */
  lines: string[];
}

type Json = { [key: string]: JsonValue };

const text = (v: JsonValue | undefined): string | null => (typeof v === 'string' ? v : null);
const integer = (v: JsonValue | undefined): number | null =>
  v instanceof JsonNumber && /^\d+$/.test(v.text) ? Number(v.text) : null;

/** One export line's hashed fields, or why it has none. */
function entryOf(line: Json): { entry: ChainedEntryFields; hash: string } | string | null {
  const chain = line.chain;
  if (typeof chain !== 'object' || chain === null || Array.isArray(chain) || chain instanceof JsonNumber) {
    return 'it has no `chain` object: export with format=ndjson&chain=true';
  }
  const c = chain;
  const seq = integer(c.seq);
  // Not sealed yet: no position and no hash. A hash with no position is an entry taken out of the chain.
  if (c.seq === null) return c.hash === null ? null : 'it has a chain hash but no position in the chain (seq is null)';
  const fields = {
    id: text(line.id),
    occurredAt: text(line.occurredAt),
    action: text(line.action),
    resourceType: text(line.resourceType),
    resourceId: text(line.resourceId),
    resourceName: text(line.resourceName),
    workspaceId: text(c.workspaceId),
    prevHash: text(c.prevHash),
    hash: text(c.hash),
  };
  const missing = Object.entries(fields).filter(([, v]) => v === null);
  if (seq === null || missing.length) {
    return `it lacks ${[...(seq === null ? ['chain.seq'] : []), ...missing.map(([k]) => k)].join(', ')}`;
  }
  return {
    hash: fields.hash!,
    entry: {
      seq,
      prevHash: fields.prevHash!,
      id: fields.id!,
      workspaceId: fields.workspaceId!,
      occurredAt: fields.occurredAt!,
      action: fields.action!,
      resourceType: fields.resourceType!,
      resourceId: fields.resourceId!,
      resourceName: fields.resourceName!,
      actorKind: text(c.actorKind),
      actorId: text(c.actorId),
      actorName: text(c.actorName),
      actorEmail: text(c.actorEmail),
      requestId: text(line.requestId),
      ip: text(c.ip),
      userAgent: text(c.userAgent),
      changes: line.changes ?? null,
    },
  };
}

/**
 * Checks an NDJSON export (`format=ndjson&chain=true`) against a signed digest and a public key,
 * with no database, as CloudTrail's validate-logs checks log files against digest files:
 *
 * 1. the digest is well-formed and signed by the given key;
 * 2. every sealed entry of the export recomputes to its recorded chain hash;
 * 3. each entry links to the one before it (prevHash), with no position missing or repeated;
 * 4. the export holds, at the digest's seq, the entry whose hash the digest signed: so every entry
 *    up to there is the one the digest covers, and every later entry extends it.
 */
export function verifyExportOffline(exportText: string, digestText: string, publicKeyPem: string): OfflineReport {
  const lines: string[] = [];
  let ok = true;
  const pass = (s: string) => lines.push(`PASS  ${s}`);
  const fail = (s: string) => {
    ok = false;
    lines.push(`FAIL  ${s}`);
  };
  const note = (s: string) => lines.push(`NOTE  ${s}`);
  const done = (): OfflineReport => {
    lines.push(ok ? 'RESULT valid' : 'RESULT INVALID');
    return { ok, lines };
  };

  let key: KeyObject;
  try {
    key = createPublicKey(publicKeyPem);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key`);
  } catch (error) {
    fail(`public key: not an Ed25519 public key in PEM (${(error as Error).message})`);
    return done();
  }
  let digest: Digest;
  try {
    const parsed = JSON.parse(digestText) as unknown;
    const problem = digestProblem(parsed);
    if (problem) throw new Error(problem);
    digest = parsed as Digest;
  } catch (error) {
    fail(`digest: ${(error as Error).message}`);
    return done();
  }
  const keyId = keyIdOf(key);
  if (digest.keyId !== keyId) {
    fail(`digest signature: the digest names key ${digest.keyId}, the public key given is ${keyId}`);
    return done();
  }
  if (!digestSignatureValid(digest, key)) {
    fail(`digest signature: INVALID with key ${keyId}: the digest was altered or not signed by this key`);
    return done();
  }
  pass(
    `digest signature: valid (key ${keyId}; workspace ${digest.workspaceId}, seq ${digest.seq}, issued ${digest.issuedAt})`,
  );

  const entries: { entry: ChainedEntryFields; hash: string }[] = [];
  let unsealed = 0;
  let unreadable = 0;
  const rows = exportText.split('\n');
  rows.forEach((row, index) => {
    if (row.trim() === '') return;
    let result: ReturnType<typeof entryOf>;
    try {
      const value = parseJson(row);
      if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof JsonNumber) {
        throw new Error('not a JSON object');
      }
      result = entryOf(value);
    } catch (error) {
      result = (error as Error).message;
    }
    if (result === null) unsealed++;
    else if (typeof result === 'string') {
      if (++unreadable <= 10) fail(`export line ${index + 1}: ${result}`);
    } else entries.push(result);
  });
  if (unreadable > 10) fail(`… ${unreadable - 10} more unreadable lines`);
  const others = entries.filter((e) => e.entry.workspaceId !== digest.workspaceId);
  if (others.length) fail(`export: ${others.length} entries belong to another workspace than the digest's`);
  const chain = entries
    .filter((e) => e.entry.workspaceId === digest.workspaceId)
    .sort((a, b) => a.entry.seq - b.entry.seq);
  if (unsealed) note(`export: ${unsealed} entries were not sealed yet when exported: no digest covers them`);
  if (chain.length === 0) {
    fail("export: no sealed entries of the digest's workspace");
    return done();
  }
  const first = chain[0].entry.seq;
  const last = chain[chain.length - 1].entry.seq;
  pass(`export: ${chain.length} sealed entries, seq ${first} to ${last}`);

  const altered = chain.filter((e) => chainHash(e.entry) !== e.hash);
  if (altered.length === 0) pass(`entry hashes: all ${chain.length} recompute to their recorded hash`);
  for (const e of altered.slice(0, 10)) {
    fail(`entry hashes: entry ${e.entry.id} (seq ${e.entry.seq}) was altered: it does not hash to its recorded hash`);
  }
  if (altered.length > 10) fail(`entry hashes: … ${altered.length - 10} more altered entries`);

  let broken = 0;
  if (first === 1 && chain[0].entry.prevHash !== '') {
    broken++;
    fail(`chain links: entry ${chain[0].entry.id} (seq 1) does not start the chain`);
  } else if (first > 1) {
    note(
      `chain links: the export starts at seq ${first}; earlier entries are not in it (removed by retention, or ` +
        `deleted: GET …/audit-logs/verify checks that against the anchors retention recorded)`,
    );
  }
  for (let i = 1; i < chain.length && broken < 10; i++) {
    const [before, entry] = [chain[i - 1], chain[i]];
    if (entry.entry.seq === before.entry.seq) {
      broken++;
      fail(`chain links: two entries at seq ${entry.entry.seq} (${before.entry.id}, ${entry.entry.id})`);
    } else if (entry.entry.seq !== before.entry.seq + 1) {
      broken++;
      fail(`chain links: entries seq ${before.entry.seq + 1} to ${entry.entry.seq - 1} are missing from the export`);
    } else if (entry.entry.prevHash !== before.hash) {
      broken++;
      fail(`chain links: entry ${entry.entry.id} (seq ${entry.entry.seq}) does not link to the entry before it`);
    }
  }
  if (broken === 0) pass('chain links: every entry links to the one before it');

  if (digest.seq === 0) {
    pass('digest head: the digest was taken of an empty chain; every entry extends it');
  } else {
    const anchor = chain.find((e) => e.entry.seq === digest.seq);
    if (!anchor) {
      fail(`digest head: the export has no entry at the digest's seq ${digest.seq} (it holds ${first} to ${last})`);
    } else if (anchor.hash !== digest.headHash) {
      fail(
        `digest head: entry ${anchor.entry.id} (seq ${digest.seq}) has hash ${anchor.hash}, the digest signed ${digest.headHash}: the log was rewritten at or before it`,
      );
    } else {
      pass(`digest head: entry ${anchor.entry.id} (seq ${digest.seq}) has the signed hash`);
    }
  }
  const covered = chain.filter((e) => e.entry.seq <= digest.seq).length;
  const after = chain.length - covered;
  if (ok) {
    pass(
      `coverage: ${covered} entries are covered by the digest${after ? `; ${after} later entries (seq ${digest.seq + 1} to ${last}) extend it` : ''}`,
    );
  }
  return done();
}
