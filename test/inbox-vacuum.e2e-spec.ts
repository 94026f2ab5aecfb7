import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { AuditSealerService, INBOX_NOT_VACUUMED } from '../src/audit/seal/audit-sealer.service';
import { createTestDatabase, type TestDatabase } from './database';
import { freePort } from './free-port';
import { ServiceProcess } from './service-process';
import { until } from './until';
import { createTestApp } from './test-app';

/** The sealer's start-up check that autovacuum looks after the inbox. */
describe('Autovacuum of the inbox', () => {
  let database: TestDatabase;
  let owner: Client;

  beforeAll(async () => {
    database = await createTestDatabase();
    owner = new Client({ connectionString: database.url });
    await owner.connect();
  });
  afterAll(async () => {
    await owner.end();
    await database.drop();
  });

  it('warns at start-up when the inbox has autovacuum switched off', async () => {
    await owner.query('ALTER TABLE audit_log_inbox SET (autovacuum_enabled = false)');
    const dir = mkdtempSync(join(tmpdir(), 'inbox-vacuum-'));
    const service = new ServiceProcess(
      {
        DATABASE_URL: database.url,
        AUDIT_SIGNING_KEY_FILE: join(dir, 'signing-key.pem'),
        AUDIT_STREAMS_KEY: randomBytes(32).toString('hex'),
      },
      await freePort(),
    );
    try {
      await service.start();
      await until('the warning', () => (service.output.includes(INBOX_NOT_VACUUMED) ? true : undefined), 30_000);
      const warnings = service.output.split('\n').filter((line) => line.includes(INBOX_NOT_VACUUMED));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/WARN/);
    } finally {
      await service.stop();
      rmSync(dir, { recursive: true, force: true });
      await owner.query('ALTER TABLE audit_log_inbox RESET (autovacuum_enabled)');
    }
  });

  it("follows the server's autovacuum and track_counts when the table does not opt out", async () => {
    const { rows } = await owner.query<{ on: boolean }>(
      `SELECT current_setting('autovacuum')::boolean AND current_setting('track_counts')::boolean AS on`,
    );
    const t = await createTestApp({}, {}, database.url);
    try {
      expect(await t.app.get(AuditSealerService).inboxVacuumed()).toBe(rows[0].on);
    } finally {
      await t.close();
    }
    // track_counts off for the service's sessions: autovacuum has no counts to act on.
    const url = new URL(database.url);
    url.searchParams.set('options', '-c track_counts=off');
    const blind = await createTestApp({}, {}, url.toString());
    try {
      expect(await blind.app.get(AuditSealerService).inboxVacuumed()).toBe(false);
    } finally {
      await blind.close();
    }
  });
});
