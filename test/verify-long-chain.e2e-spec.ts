import { Client } from 'pg';
import { AuditLogsService } from '../src/audit/query/audit-logs.service';
import { AuditSealerService } from '../src/audit/seal/audit-sealer.service';
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
    await superuser.query(
      `SELECT audit_log_append(jsonb_agg(jsonb_build_object('id', gen_random_uuid(), 'workspace_id', $1::uuid,
         'occurred_at', now() - make_interval(secs => 30000 - g), 'action', 'updated', 'resource_type', 'segment',
         'resource_id', md5('long-' || g % 50)::uuid, 'resource_name', 'Segment ' || g % 50, 'actor_name', 'Load',
         'changes', jsonb_build_array(jsonb_build_object('field', 'name', 'before', g, 'after', g + 1)))))
       FROM generate_series(1, 30000) g`,
      [long.workspaceId],
    );
    await t.app.get(AuditSealerService).seal();
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
