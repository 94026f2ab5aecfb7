import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AppConfig, ConfigError, loadConfig } from './app-config';

/** A variable of the README's configuration table: its lowest and highest accepted value, and the field set. */
type Range = [name: string, lowest: number, highest: number, field: keyof AppConfig];

/** Both ends of every range are accepted, together, and one past each is refused in one line naming the range. */
function rangeTests(ranges: Range[]): void {
  it.each([
    ['lowest', 1],
    ['highest', 2],
  ] as const)('accepts every range’s %s value', (_, column) => {
    const env = Object.fromEntries(ranges.map((range) => [range[0], String(range[column])]));
    const config = loadConfig(env);
    for (const range of ranges) expect({ [range[0]]: config[range[3]] }).toEqual({ [range[0]]: range[column] });
  });

  it.each(
    ranges.flatMap(([name, lowest, highest]) =>
      [lowest - 1, highest + 1].map((value) => [name, String(value), lowest, highest] as const),
    ),
  )('refuses %s=%s in one line naming the range %i to %i', (name, value, lowest, highest) => {
    let message = '';
    try {
      loadConfig({ [name]: value });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).toBe(`${name}="${value}" is invalid: expected a whole number from ${lowest} to ${highest}.`);
  });
}

describe('loadConfig', () => {
  it('defaults to port 3000 on the embedded database', () => {
    expect(loadConfig({})).toMatchObject({
      port: 3000,
      databaseUrl: undefined,
      pgliteDir: './.data/pglite',
      databasePoolSize: 10,
      nodeEnv: 'development',
    });
  });

  it('reads a PostgreSQL URL and a pool size', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://u:p@db:5432/app', DATABASE_POOL_SIZE: '25' });
    expect(config).toMatchObject({ databaseUrl: 'postgresql://u:p@db:5432/app', databasePoolSize: 25 });
  });

  it('reads a streaming replica for the audit-log reads beside DATABASE_URL', () => {
    expect(loadConfig({})).toMatchObject({ databaseReplicaUrl: undefined });
    const config = loadConfig({
      DATABASE_URL: 'postgresql://u:p@primary:5432/app',
      DATABASE_REPLICA_URL: 'postgresql://u:p@standby:5432/app',
    });
    expect(config).toMatchObject({ databaseReplicaUrl: 'postgresql://u:p@standby:5432/app' });
  });

  it('bounds exports: a 30 s stall cut-off, 2 per workspace and 8 per process by default', () => {
    expect(loadConfig({})).toMatchObject({ exportStallSeconds: 30, exportsPerWorkspace: 2, exportsPerProcess: 8 });
    expect(
      loadConfig({ AUDIT_EXPORT_STALL_SECONDS: '5', AUDIT_EXPORTS_PER_WORKSPACE: '1', AUDIT_EXPORTS_PER_PROCESS: '3' }),
    ).toMatchObject({ exportStallSeconds: 5, exportsPerWorkspace: 1, exportsPerProcess: 3 });
  });

  it.each([
    [
      { AUDIT_EXPORT_STALL_SECONDS: '0' },
      /AUDIT_EXPORT_STALL_SECONDS="0" is invalid: expected a whole number from 1 to 3600/,
    ],
    [{ AUDIT_EXPORTS_PER_WORKSPACE: 'many' }, /AUDIT_EXPORTS_PER_WORKSPACE="many" is invalid/],
    [{ AUDIT_EXPORTS_PER_PROCESS: '-1' }, /AUDIT_EXPORTS_PER_PROCESS="-1" is invalid/],
    [{ PORT: 'eighty' }, /PORT="eighty" is invalid: expected a whole number from 1 to 65535/],
    [{ PORT: '70000' }, /PORT="70000"/],
    [{ DATABASE_POOL_SIZE: '0' }, /DATABASE_POOL_SIZE="0" is invalid/],
    [{ DATABASE_URL: 'mysql://x@y/z' }, /DATABASE_URL has protocol "mysql:": expected postgresql:\/\//],
    [{ DATABASE_URL: 'not a url' }, /DATABASE_URL is not a URL/],
    [{ DATABASE_REPLICA_URL: 'postgresql://u@standby/app' }, /DATABASE_REPLICA_URL needs DATABASE_URL/],
    [
      { DATABASE_URL: 'postgresql://u@primary/app', DATABASE_REPLICA_URL: 'http://standby' },
      /DATABASE_REPLICA_URL has protocol "http:"/,
    ],
    [{ NODE_ENV: 'staging' }, /NODE_ENV="staging" is invalid: expected one of development, test, production/],
    [{ LOG_LEVEL: 'verbose' }, /LOG_LEVEL="verbose" is invalid: expected one of warn, log, debug/],
    [{ SEED_DEMO: 'yes' }, /SEED_DEMO="yes" is invalid: expected one of true, false/],
  ])('rejects %j naming the variable and what it accepts', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('defaults the limits, the schedule, retention and sealing as the README says', () => {
    expect(loadConfig({})).toMatchObject({
      auditRateLimit: 120,
      exportRateLimit: 10,
      auditMaintenanceSchedule: '15 3 * * *',
      auditRetentionEnabled: true,
      auditPartitionsAhead: 3,
      auditRetentionBatch: 5000,
      auditSealIntervalMs: 1000,
      logLevel: 'warn',
      seedDemo: true,
      databaseMaintenanceUrl: undefined,
    });
    expect(loadConfig({ AUDIT_RETENTION: 'off', SEED_DEMO: 'false' })).toMatchObject({
      auditRetentionEnabled: false,
      seedDemo: false,
    });
  });

  rangeTests([
    ['PORT', 1, 65535, 'port'],
    ['DATABASE_POOL_SIZE', 1, 200, 'databasePoolSize'],
    ['AUDIT_RATE_LIMIT', 1, 100_000, 'auditRateLimit'],
    ['AUDIT_EXPORT_RATE_LIMIT', 1, 100_000, 'exportRateLimit'],
    ['AUDIT_EXPORT_STALL_SECONDS', 1, 3600, 'exportStallSeconds'],
    ['AUDIT_EXPORTS_PER_WORKSPACE', 1, 1000, 'exportsPerWorkspace'],
    ['AUDIT_EXPORTS_PER_PROCESS', 1, 10_000, 'exportsPerProcess'],
    ['AUDIT_PARTITIONS_AHEAD', 1, 24, 'auditPartitionsAhead'],
    ['AUDIT_RETENTION_BATCH', 100, 100_000, 'auditRetentionBatch'],
    ['AUDIT_SEAL_INTERVAL_MS', 0, 3_600_000, 'auditSealIntervalMs'],
  ]);

  it('takes an AUDIT_CURSOR_SECRET of 32 characters or more, refuses a shorter one, and draws one when unset', () => {
    expect(loadConfig({ AUDIT_CURSOR_SECRET: 'c'.repeat(32) }).cursorSecret).toBe('c'.repeat(32));
    expect(() => loadConfig({ AUDIT_CURSOR_SECRET: 'c'.repeat(31) })).toThrow(
      new ConfigError('AUDIT_CURSOR_SECRET is too short: expected at least 32 characters.'),
    );
    expect(loadConfig({}).cursorSecret).not.toBe(loadConfig({}).cursorSecret);
  });

  it.each([
    [{ AUDIT_RETENTION: 'no' }, /AUDIT_RETENTION="no" is invalid: expected one of on, off/],
    [
      { AUDIT_MAINTENANCE_SCHEDULE: 'daily' },
      /AUDIT_MAINTENANCE_SCHEDULE="daily" is invalid: expected a cron expression/,
    ],
    [{ DATABASE_MAINTENANCE_URL: 'postgresql://u@db/app' }, /DATABASE_MAINTENANCE_URL needs DATABASE_URL/],
  ])('rejects %j naming the variable and what it accepts', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('AUDIT_SIGNING_KEY', () => {
  const ed25519 = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

  it('accepts an Ed25519 private key as PEM or as the path of a PEM file; unset, the key file is used', () => {
    expect(loadConfig({ AUDIT_SIGNING_KEY: ed25519 }).auditSigningKey).toBe(ed25519);
    const file = join(mkdtempSync(join(tmpdir(), 'audit-key-')), 'key.pem');
    writeFileSync(file, ed25519);
    expect(loadConfig({ AUDIT_SIGNING_KEY: file }).auditSigningKey).toBe(ed25519);
    expect(loadConfig({})).toMatchObject({
      auditSigningKey: undefined,
      auditSigningKeyFile: './.data/audit-signing-key.pem',
      auditDigestSchedule: '0 * * * *',
    });
  });

  it('rejects anything else with one line naming the variable, never echoing a key', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const publicOnly = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    for (const [value, reason] of [
      [
        '/nonexistent/key.pem',
        /AUDIT_SIGNING_KEY is invalid: cannot read the file "\/nonexistent\/key.pem" \(ENOENT\)/,
      ],
      [rsa, /AUDIT_SIGNING_KEY is invalid: it is a rsa key; expected an Ed25519 private key/],
      [publicOnly, /AUDIT_SIGNING_KEY is invalid: it is not a private key in PEM/],
      ['-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----', /AUDIT_SIGNING_KEY is invalid/],
    ] as const) {
      let message = '';
      try {
        loadConfig({ AUDIT_SIGNING_KEY: value });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        message = (error as Error).message;
      }
      expect(message).toMatch(reason);
      expect(message).not.toContain('\n');
      expect(message).not.toContain('BEGIN');
    }
  });

  it('rejects an AUDIT_DIGEST_SCHEDULE that is not a cron expression', () => {
    expect(() => loadConfig({ AUDIT_DIGEST_SCHEDULE: 'hourly' })).toThrow(/AUDIT_DIGEST_SCHEDULE="hourly" is invalid/);
  });
});

describe('log stream settings', () => {
  it('default to https:// public hosts, batches of 500 entries or 1 MiB, a 10 s timeout and retries from 1 s to 5 min', () => {
    expect(loadConfig({})).toMatchObject({
      auditStreamsAllowPrivate: false,
      auditStreamsBatch: 500,
      auditStreamsBatchBytes: 1_048_576,
      auditStreamsTimeoutMs: 10_000,
      auditStreamsPollMs: 1000,
      auditStreamsRetryMinMs: 1000,
      auditStreamsRetryMaxMs: 300_000,
      auditStreamsPerProcess: 8,
      auditStreamsKey: undefined,
      auditStreamsKeyFile: './.data/audit-streams-key',
    });
    const key = 'AB'.repeat(32);
    expect(
      loadConfig({ AUDIT_STREAMS_ALLOW_PRIVATE: 'true', AUDIT_STREAMS_BATCH: '50', AUDIT_STREAMS_KEY: key }),
    ).toMatchObject({ auditStreamsAllowPrivate: true, auditStreamsBatch: 50, auditStreamsKey: key.toLowerCase() });
  });

  it.each([
    [
      { AUDIT_STREAMS_ALLOW_PRIVATE: 'yes' },
      /AUDIT_STREAMS_ALLOW_PRIVATE="yes" is invalid: expected one of true, false/,
    ],
    [{ AUDIT_STREAMS_BATCH: '0' }, /AUDIT_STREAMS_BATCH="0" is invalid: expected a whole number from 1 to 10000/],
    [{ AUDIT_STREAMS_TIMEOUT_MS: '10s' }, /AUDIT_STREAMS_TIMEOUT_MS="10s" is invalid/],
    [
      { AUDIT_STREAMS_RETRY_MIN_MS: '5000', AUDIT_STREAMS_RETRY_MAX_MS: '1000' },
      /AUDIT_STREAMS_RETRY_MAX_MS \(1000\) is below/,
    ],
    [{ AUDIT_STREAMS_KEY: 'short' }, /AUDIT_STREAMS_KEY is invalid: expected 64 hexadecimal characters/],
  ])('rejects %j naming the variable and what it accepts', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  rangeTests([
    ['AUDIT_STREAMS_BATCH', 1, 10_000, 'auditStreamsBatch'],
    ['AUDIT_STREAMS_BATCH_BYTES', 1024, 104_857_600, 'auditStreamsBatchBytes'],
    ['AUDIT_STREAMS_TIMEOUT_MS', 100, 300_000, 'auditStreamsTimeoutMs'],
    ['AUDIT_STREAMS_RETRY_MIN_MS', 10, 3_600_000, 'auditStreamsRetryMinMs'],
    ['AUDIT_STREAMS_RETRY_MAX_MS', 10, 3_600_000, 'auditStreamsRetryMaxMs'],
    ['AUDIT_STREAMS_POLL_MS', 50, 60_000, 'auditStreamsPollMs'],
    ['AUDIT_STREAMS_PER_PROCESS', 1, 1000, 'auditStreamsPerProcess'],
  ]);

  it('accepts a retry cap equal to the first delay, and refuses one a millisecond below it', () => {
    expect(loadConfig({ AUDIT_STREAMS_RETRY_MIN_MS: '2000', AUDIT_STREAMS_RETRY_MAX_MS: '2000' })).toMatchObject({
      auditStreamsRetryMinMs: 2000,
      auditStreamsRetryMaxMs: 2000,
    });
    expect(() => loadConfig({ AUDIT_STREAMS_RETRY_MIN_MS: '2000', AUDIT_STREAMS_RETRY_MAX_MS: '1999' })).toThrow(
      new ConfigError(
        'AUDIT_STREAMS_RETRY_MAX_MS (1999) is below AUDIT_STREAMS_RETRY_MIN_MS (2000): expected the cap to be at least the first delay.',
      ),
    );
  });

  it('accepts an AUDIT_STREAMS_KEY of exactly 64 hex characters, and refuses 63, 65 or a non-hex one without echoing it', () => {
    const key = '0123456789abcdefABCDEF'.repeat(3).slice(0, 64);
    expect(loadConfig({ AUDIT_STREAMS_KEY: key }).auditStreamsKey).toBe(key.toLowerCase());
    for (const value of [key.slice(1), `${key}0`, `${key.slice(1)}g`]) {
      let message = '';
      try {
        loadConfig({ AUDIT_STREAMS_KEY: value });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        message = (error as Error).message;
      }
      expect(message).toMatch(/^AUDIT_STREAMS_KEY is invalid: expected 64 hexadecimal characters/);
      expect(message).not.toContain('\n');
      expect(message).not.toContain(value.slice(0, 16));
    }
  });
});
