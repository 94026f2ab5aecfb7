import { validateCronExpression } from 'cron';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** Settings read once from the environment at start-up; see the README's configuration table. */
export interface AppConfig {
  port: number;
  nodeEnv: 'development' | 'test' | 'production';
  /** Unset: the embedded database (PGlite) in `pgliteDir`. */
  databaseUrl: string | undefined;
  /**
   * A connection as a member of `audit_log_maintenance`, for retention and partitions ahead, when the
   * service itself runs as the least-privilege application role; unset = the service's own connection.
   */
  databaseMaintenanceUrl: string | undefined;
  /**
   * A streaming replica (hot standby) of DATABASE_URL: the audit-log reads (list, entry, filters,
   * export, resources, verify) go there, writes and the sealer stay on the primary; unset = all on DATABASE_URL.
   */
  databaseReplicaUrl: string | undefined;
  databasePoolSize: number;
  pgliteDir: string;
  /** Nest's own logs at start and while serving: warn (warnings and errors), log, or debug. */
  logLevel: 'warn' | 'log' | 'debug';
  /** Seed the demo workspace on the first start of an empty embedded database. */
  seedDemo: boolean;
  /** Requests per minute and token on the audit-log routes, and on its export. */
  auditRateLimit: number;
  exportRateLimit: number;
  /** An export whose client has not taken a chunk within this many seconds is cut off. */
  exportStallSeconds: number;
  /** Exports running at once for one workspace, and in this process; 429 past either. */
  exportsPerWorkspace: number;
  exportsPerProcess: number;
  /** Signs audit-log paging cursors; random per process when unset, so cursors end with a restart. */
  cursorSecret: string;
  /** When the audit maintenance job runs (cron, UTC): partitions ahead, then retention. */
  auditMaintenanceSchedule: string;
  /** Off: the job still creates partitions but removes nothing, whatever the workspaces' retention. */
  auditRetentionEnabled: boolean;
  /** Monthly partitions created ahead of the current month. */
  auditPartitionsAhead: number;
  /** Entries a retention batch deletes in one transaction when a whole month cannot be dropped. */
  auditRetentionBatch: number;
  /** How often the sealer moves committed entries into the hash-chained log, in ms; 0 = only on demand. */
  auditSealIntervalMs: number;
  /**
   * The Ed25519 private key (PEM) that signs audit digests, from AUDIT_SIGNING_KEY (the PEM itself,
   * or the path of a file holding it). Unset: the key in `auditSigningKeyFile`, created on first start.
   */
  auditSigningKey: string | undefined;
  /** Where the signing key is kept (and created, mode 0600) when AUDIT_SIGNING_KEY is unset. */
  auditSigningKeyFile: string;
  /** When the digest job signs the chain head of every workspace whose log grew (cron, UTC). */
  auditDigestSchedule: string;
  /**
   * Lets log streams reach private, loopback and link-local addresses, and plain http://: for a
   * receiver on the same host or network (tests, a sidecar). Off, a stream is https:// to a public host.
   */
  auditStreamsAllowPrivate: boolean;
  /** Entries per delivery batch, and the body size past which a batch stops growing (bytes). */
  auditStreamsBatch: number;
  auditStreamsBatchBytes: number;
  /** A delivery that has not been answered within this many ms is abandoned and retried. */
  auditStreamsTimeoutMs: number;
  /** How often each instance looks for streams with entries to deliver, in ms. */
  auditStreamsPollMs: number;
  /** Backoff after a failed delivery: doubles from the first to the cap, with jitter, in ms. */
  auditStreamsRetryMinMs: number;
  auditStreamsRetryMaxMs: number;
  /** Streams one instance delivers at once. */
  auditStreamsPerProcess: number;
  /**
   * The AES-256 key (64 hex characters) that encrypts stream secrets at rest, from AUDIT_STREAMS_KEY.
   * Unset: the key in `auditStreamsKeyFile`, created on first start. Never stored in the database.
   */
  auditStreamsKey: string | undefined;
  auditStreamsKeyFile: string;
}

export const APP_CONFIG = Symbol('APP_CONFIG');

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected a whole number from ${min} to ${max}.`);
  }
  return value;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is invalid: expected one of ${allowed.join(', ')}.`);
  }
  return raw as T;
}

function databaseUrl(env: NodeJS.ProcessEnv, name = 'DATABASE_URL'): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a URL: expected postgresql://user:password@host:5432/database.`);
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') {
    throw new ConfigError(
      `${name} has protocol "${url.protocol}": expected postgresql:// (leave it unset for the embedded database).`,
    );
  }
  return raw;
}

function maintenanceUrl(env: NodeJS.ProcessEnv): string | undefined {
  const url = databaseUrl(env, 'DATABASE_MAINTENANCE_URL');
  if (url && !databaseUrl(env)) {
    throw new ConfigError('DATABASE_MAINTENANCE_URL needs DATABASE_URL: the embedded database has one connection.');
  }
  return url;
}

function replicaUrl(env: NodeJS.ProcessEnv): string | undefined {
  const url = databaseUrl(env, 'DATABASE_REPLICA_URL');
  if (url && !databaseUrl(env)) {
    throw new ConfigError('DATABASE_REPLICA_URL needs DATABASE_URL: the embedded database has no replica.');
  }
  return url;
}

function cursorSecret(env: NodeJS.ProcessEnv): string {
  const raw = env.AUDIT_CURSOR_SECRET;
  if (raw === undefined || raw === '') return randomBytes(32).toString('hex');
  if (raw.length < 32) throw new ConfigError('AUDIT_CURSOR_SECRET is too short: expected at least 32 characters.');
  return raw;
}

function cronSchedule(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const { valid } = validateCronExpression(raw);
  if (!valid) {
    throw new ConfigError(
      `${name}=${JSON.stringify(raw)} is invalid: expected a cron expression such as "${fallback}" (minute hour day month weekday, UTC).`,
    );
  }
  return raw;
}

/**
 * AUDIT_SIGNING_KEY: a PEM (it starts with "-----BEGIN") or else the path of a PEM file; either way
 * an Ed25519 private key. Checked here, so that a wrong value stops the start with one line.
 */
function signingKey(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.AUDIT_SIGNING_KEY;
  if (raw === undefined || raw === '') return undefined;
  const expected = 'expected an Ed25519 private key in PEM, or the path of a file holding one';
  let pem = raw;
  if (!raw.trimStart().startsWith('-----BEGIN')) {
    try {
      pem = readFileSync(raw, 'utf8');
    } catch (error) {
      throw new ConfigError(
        `AUDIT_SIGNING_KEY is invalid: cannot read the file ${JSON.stringify(raw)} (${(error as NodeJS.ErrnoException).code ?? 'error'}); ${expected}.`,
      );
    }
  }
  let type: string | undefined;
  try {
    type = createPrivateKey(pem).asymmetricKeyType;
  } catch {
    throw new ConfigError(`AUDIT_SIGNING_KEY is invalid: it is not a private key in PEM; ${expected}.`);
  }
  if (type !== 'ed25519') {
    throw new ConfigError(`AUDIT_SIGNING_KEY is invalid: it is a ${type} key; ${expected}.`);
  }
  return pem;
}

function streamsKey(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.AUDIT_STREAMS_KEY;
  if (raw === undefined || raw === '') return undefined;
  if (!/^[0-9a-fA-F]{64}$/.test(raw)) {
    throw new ConfigError(
      'AUDIT_STREAMS_KEY is invalid: expected 64 hexadecimal characters (32 random bytes, e.g. `openssl rand -hex 32`).',
    );
  }
  return raw.toLowerCase();
}

function retryBounds(env: NodeJS.ProcessEnv): { min: number; max: number } {
  const min = integer(env, 'AUDIT_STREAMS_RETRY_MIN_MS', 1000, 10, 3_600_000);
  const max = integer(env, 'AUDIT_STREAMS_RETRY_MAX_MS', 300_000, 10, 3_600_000);
  if (max < min) {
    throw new ConfigError(
      `AUDIT_STREAMS_RETRY_MAX_MS (${max}) is below AUDIT_STREAMS_RETRY_MIN_MS (${min}): expected the cap to be at least the first delay.`,
    );
  }
  return { min, max };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  return {
    port: integer(env, 'PORT', 3000, 1, 65535),
    nodeEnv: oneOf(env, 'NODE_ENV', 'development', ['development', 'test', 'production'] as const),
    databaseUrl: databaseUrl(env),
    databaseMaintenanceUrl: maintenanceUrl(env),
    databaseReplicaUrl: replicaUrl(env),
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', 10, 1, 200),
    pgliteDir: env.PGLITE_DIR || './.data/pglite',
    logLevel: oneOf(env, 'LOG_LEVEL', 'warn', ['warn', 'log', 'debug'] as const),
    seedDemo: oneOf(env, 'SEED_DEMO', 'true', ['true', 'false'] as const) === 'true',
    cursorSecret: cursorSecret(env),
    auditRateLimit: integer(env, 'AUDIT_RATE_LIMIT', 120, 1, 100_000),
    exportRateLimit: integer(env, 'AUDIT_EXPORT_RATE_LIMIT', 10, 1, 100_000),
    exportStallSeconds: integer(env, 'AUDIT_EXPORT_STALL_SECONDS', 30, 1, 3600),
    exportsPerWorkspace: integer(env, 'AUDIT_EXPORTS_PER_WORKSPACE', 2, 1, 1000),
    exportsPerProcess: integer(env, 'AUDIT_EXPORTS_PER_PROCESS', 8, 1, 10_000),
    auditMaintenanceSchedule: cronSchedule(env, 'AUDIT_MAINTENANCE_SCHEDULE', '15 3 * * *'),
    auditRetentionEnabled: oneOf(env, 'AUDIT_RETENTION', 'on', ['on', 'off'] as const) === 'on',
    auditPartitionsAhead: integer(env, 'AUDIT_PARTITIONS_AHEAD', 3, 1, 24),
    auditRetentionBatch: integer(env, 'AUDIT_RETENTION_BATCH', 5000, 100, 100_000),
    auditSealIntervalMs: integer(env, 'AUDIT_SEAL_INTERVAL_MS', 1000, 0, 3_600_000),
    auditSigningKey: signingKey(env),
    auditSigningKeyFile: env.AUDIT_SIGNING_KEY_FILE || './.data/audit-signing-key.pem',
    auditDigestSchedule: cronSchedule(env, 'AUDIT_DIGEST_SCHEDULE', '0 * * * *'),
    auditStreamsAllowPrivate: oneOf(env, 'AUDIT_STREAMS_ALLOW_PRIVATE', 'false', ['true', 'false'] as const) === 'true',
    auditStreamsBatch: integer(env, 'AUDIT_STREAMS_BATCH', 500, 1, 10_000),
    auditStreamsBatchBytes: integer(env, 'AUDIT_STREAMS_BATCH_BYTES', 1_048_576, 1024, 104_857_600),
    auditStreamsTimeoutMs: integer(env, 'AUDIT_STREAMS_TIMEOUT_MS', 10_000, 100, 300_000),
    auditStreamsPollMs: integer(env, 'AUDIT_STREAMS_POLL_MS', 1000, 50, 60_000),
    auditStreamsRetryMinMs: retryBounds(env).min,
    auditStreamsRetryMaxMs: retryBounds(env).max,
    auditStreamsPerProcess: integer(env, 'AUDIT_STREAMS_PER_PROCESS', 8, 1, 1000),
    auditStreamsKey: streamsKey(env),
    auditStreamsKeyFile: env.AUDIT_STREAMS_KEY_FILE || './.data/audit-streams-key',
  };
}
