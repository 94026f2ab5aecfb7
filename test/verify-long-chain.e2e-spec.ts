import { Client } from 'pg';
import { AuditLogsService } from '../src/audit/query/audit-logs.service';
import { addSegmentUpdates } from './fixtures';
import { createTestApp, createWorkspace, type TestApp } from './test-app';

/**
 * `verify` of a chain longer than one statement's batch, by a second instance of the service whose
 * sessions may not write a temporary file. A file of its own: the second instance takes over the
 * process-wide transaction host of nestjs-cls, so nothing may use the first one's after it.
 */
describe('Verification of a long chain', () => {
  let t: TestApp;
  let superuser: Client;

  beforeAll(async () => {
    t = await createTestApp();
    superuser = new Client({ connectionString: t.database.url });
    await superuser.connect();
  });
  afterAll(async () => {
    await superuser.end();
    await t.close();
  });

  it('verifies a long chain in statements that write no temporary file', async () => {
    const long = await createWorkspace(t.app, 'Long');
    // 30,000 entries through the inbox, as the capture triggers add them, then sealed into the chain.
    await addSegmentUpdates(superuser, long.workspaceId, 30_000, 40);
    await superuser.query('ANALYZE audit_log_sealed'); // as autovacuum would: the planner knows the chain's size
    // A second instance of the service whose sessions may not write a single temporary file.
    const url = new URL(t.database.url);
    url.searchParams.set('options', '-c temp_file_limit=0');
    const tight = await createTestApp({}, {}, url.toString());
    // Several statements, each a range the planner would rather read by bitmap and sort.
    tight.app.get(AuditLogsService).verifyBatch = 10_000;
    try {
      const result = (
        await tight.http.get(`/api/workspaces/${long.workspaceId}/audit-logs/verify`).set(long.admin.auth).expect(200)
      ).body as { intact: boolean; entries: number };
      expect(result).toMatchObject({ intact: true });
      expect(result.entries).toBeGreaterThan(30_000);
      const [{ temp_file_limit }] = await tight.prisma.$queryRaw<{ temp_file_limit: string }[]>`SHOW temp_file_limit`;
      expect(temp_file_limit).toBe('0'); // the limit did apply to the service's sessions
    } finally {
      await tight.close();
    }
  });
});
