import { Client } from 'pg';
import { AuditLogsService } from '../src/audit/query/audit-logs.service';
import { AuditSealerService } from '../src/audit/seal/audit-sealer.service';
import { AuditRetentionService, partitionEnd } from '../src/audit/retention/audit-retention.service';
import { APP_CONFIG, type AppConfig } from '../src/config/app-config';
import { ResourceFactory } from './factories';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

describe('Monthly partitions of the audit log', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let db: Client;
  let resources: ResourceFactory;

  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app);
    resources = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    db = new Client({ connectionString: t.database.url });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  const partitions = (): Promise<string[]> => t.app.get(AuditRetentionService).partitions();
  const partitionOf = async (resourceId: string): Promise<string[]> =>
    (
      await db.query<{ p: string }>(
        `SELECT tableoid::regclass::text AS p FROM audit_log_sealed WHERE resource_id = $1 ORDER BY seq`,
        [resourceId],
      )
    ).rows.map((r) => r.p);
  const verify = async () =>
    (await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs/verify`).set(ws.admin.auth).expect(200)).body as {
      intact: boolean;
      entries: number;
    };

  it('creates the current month and the three after it when the service starts', async () => {
    const now = new Date();
    const expected = [0, 1, 2, 3].map((ahead) => {
      const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + ahead, 1));
      return `audit_logs_p${month.getUTCFullYear()}_${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
    });
    expect(await partitions()).toEqual(expect.arrayContaining(expected));
    // Each month refuses TRUNCATE itself (statement triggers are not inherited).
    await expect(db.query(`TRUNCATE ${expected[1]}`)).rejects.toThrow('append-only: TRUNCATE is not allowed');
  });

  /** Entries with their own times, as an import would add them (owner only), then sealed into their months. */
  const appendAt = async (resourceId: string, entries: [string, string][]): Promise<void> => {
    await db.query(
      `SELECT audit_log_append(jsonb_agg(jsonb_build_object('id', gen_random_uuid(), 'workspace_id', $1::uuid,
         'occurred_at', e.at, 'action', 'updated', 'resource_type', 'segment', 'resource_id', $2::uuid,
         'resource_name', e.name, 'actor_kind', 'system', 'actor_name', 'import', 'changes', '[]'::jsonb)))
       FROM jsonb_to_recordset($3::jsonb) AS e(at timestamptz, name text)`,
      [ws.workspaceId, resourceId, JSON.stringify(entries.map(([at, name]) => ({ at, name })))],
    );
    await t.app.get(AuditSealerService).seal();
  };

  it('seals an entry at 23:59:59.999 on the last day of a month and one at midnight into their own months', async () => {
    const segment = await resources.create('segments');
    await appendAt(segment.id, [
      ['2026-12-31T23:59:59.999Z', 'Before midnight'],
      ['2027-01-01T00:00:00.000Z', 'After midnight'],
    ]);
    expect((await partitionOf(segment.id)).slice(-2)).toEqual(['audit_logs_p2026_12', 'audit_logs_p2027_01']);
    const list = async (query: Record<string, string>) =>
      (
        await t.http
          .get(`/api/workspaces/${ws.workspaceId}/audit-logs`)
          .query({ resourceId: segment.id, ...query })
          .set(ws.admin.auth)
          .expect(200)
      ).body.items.map((e: { resourceName: string }) => e.resourceName) as string[];
    expect(await list({ from: '2027-01-01T00:00:00Z' })).toEqual(['After midnight']);
    expect(await list({ from: '2026-12-01T00:00:00Z', to: '2027-01-01T00:00:00Z' })).toEqual(['Before midnight']);
    // New York is five hours behind: its midnight of 31 December is 05:00 UTC.
    expect(await list({ from: '2026-12-31T19:00:00-05:00' })).toEqual(['After midnight']);
    expect(await verify()).toMatchObject({ intact: true });
  });

  it('creates the month of an entry beyond the last partition when it seals it', async () => {
    // Sealed alone: the sealer creates every month between the oldest and newest entry it seals, and
    // earlier tests' verifications left entries of today.
    await t.app.get(AuditSealerService).seal();
    const before = await partitions();
    expect(before).not.toContain('audit_logs_p2031_03');
    const id = '5d6f0c1e-8a43-4c55-9f0e-2b1d3c4e5f60';
    await appendAt(id, [['2031-03-10T12:00:00.000Z', 'Far ahead']]);
    expect(await partitionOf(id)).toEqual(['audit_logs_p2031_03']);
    expect((await partitions()).filter((p) => !before.includes(p))).toEqual(['audit_logs_p2031_03']);
    const first = await t.http.get(`/api/workspaces/${ws.workspaceId}/audit-logs`).set(ws.admin.auth).expect(200);
    expect(first.body.items[0]).toMatchObject({ resourceId: id, occurredAt: '2031-03-10T12:00:00.000Z' });
    expect(await verify()).toMatchObject({ intact: true });
  });

  it('names each month after its UTC range, which the retention job reads back', async () => {
    await db.query(`SELECT audit_log_create_partitions('2032-07-04T09:00:00Z', '2032-07-04T09:00:00Z')`);
    const { rows } = await db.query<{ bound: string }>(
      `SELECT pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_class c WHERE c.relname = 'audit_logs_p2032_07'`,
    );
    expect(rows[0].bound).toBe("FOR VALUES FROM ('2032-07-01 00:00:00+00') TO ('2032-08-01 00:00:00+00')");
    expect(partitionEnd('audit_logs_p2032_07')).toEqual(new Date('2032-08-01T00:00:00Z'));
    expect(partitionEnd('audit_logs_p2032_12')).toEqual(new Date('2033-01-01T00:00:00Z'));
    expect(partitionEnd('audit_logs')).toBeUndefined();
  });
});

describe('Retention of the audit log', () => {
  let t: TestApp;
  let db: Client;
  let short: TestWorkspace; // 12 months
  let standard: TestWorkspace; // 13 months, the default
  let long: TestWorkspace; // 24 months
  let retention: AuditRetentionService;
  /** Entry ids per workspace and age label. */
  const ids = new Map<string, Map<string, string[]>>();

  /** Entries written through the same SQL function as the capture, so each is chained. */
  const writeEntries = async (workspace: TestWorkspace, label: string, age: string, count = 1): Promise<void> => {
    const entries = await db.query<{ e: unknown }>(
      `SELECT jsonb_agg(jsonb_build_object(
         'id', gen_random_uuid(), 'workspace_id', $1::uuid, 'occurred_at', now() - $2::interval,
         'action', 'updated', 'resource_type', 'segment', 'resource_id', gen_random_uuid(),
         'resource_name', $3 || ' ' || g, 'changes', '[]'::jsonb)) AS e
       FROM generate_series(1, $4::int) g`,
      [workspace.workspaceId, age, label, count],
    );
    await db.query(`SELECT audit_log_append($1::jsonb)`, [JSON.stringify(entries.rows[0].e)]);
    await t.app.get(AuditSealerService).seal();
    const { rows } = await db.query<{ id: string }>(
      `SELECT id FROM audit_logs WHERE workspace_id = $1 AND resource_name LIKE $2 || ' %'`,
      [workspace.workspaceId, label],
    );
    const byLabel = ids.get(workspace.workspaceId) ?? new Map<string, string[]>();
    byLabel.set(
      label,
      rows.map((r) => r.id),
    );
    ids.set(workspace.workspaceId, byLabel);
  };
  const remaining = async (workspace: TestWorkspace): Promise<string[]> => {
    const { rows } = await db.query<{ id: string }>(`SELECT id FROM audit_logs WHERE workspace_id = $1`, [
      workspace.workspaceId,
    ]);
    const present = new Set(rows.map((r) => r.id));
    return [...ids.get(workspace.workspaceId)!.entries()]
      .filter(([, list]) => list.every((id) => present.has(id)))
      .map(([label]) => label)
      .sort();
  };
  const verify = async (workspace: TestWorkspace) =>
    (
      await t.http
        .get(`/api/workspaces/${workspace.workspaceId}/audit-logs/verify`)
        .set(workspace.admin.auth)
        .expect(200)
    ).body as { intact: boolean; entries: number; firstBroken?: unknown };

  // Ages, oldest first (the chain order); 'months' are calendar months, as retention counts them.
  const AGES: [string, string, number][] = [
    ['30 months', '30 months', 1],
    ['25 months', '25 months', 1],
    ['14 months', '14 months', 1],
    ['12 months + 5 days', '12 months 5 days', 250],
    ['12 months - 2 days', '12 months -2 days', 1],
    ['1 month', '1 month', 1],
  ];

  beforeAll(async () => {
    t = await createTestApp({ auditRetentionBatch: 100 });
    // Three chain positions per statement, so that every verification here links entries across statements.
    t.app.get(AuditLogsService).verifyBatch = 3;
    retention = t.app.get(AuditRetentionService);
    db = new Client({ connectionString: t.database.url });
    await db.connect();
    short = await createWorkspace(t.app, 'Short');
    standard = await createWorkspace(t.app, 'Standard');
    long = await createWorkspace(t.app, 'Long');
    // The workspaces' own entries (created, members, tokens) are today's: sealed first, so that the
    // months between them and the old entries below are not created (empty) along the way.
    await t.app.get(AuditSealerService).seal();
    for (const [label, age, count] of AGES) {
      for (const workspace of [short, standard, long]) await writeEntries(workspace, label, age, count);
    }
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  it('takes the retention from the workspace: 13 months by default, 12 to 1200, admins only', async () => {
    const url = (w: TestWorkspace) => `/api/workspaces/${w.workspaceId}/audit-retention`;
    expect((await t.http.get(url(standard)).set(standard.admin.auth).expect(200)).body).toEqual({
      retentionMonths: 13,
      removals: [],
    });
    const tooShort = await t.http.put(url(short)).set(short.admin.auth).send({ retentionMonths: 11 }).expect(400);
    expect(JSON.stringify(tooShort.body)).toContain('retentionMonths must be at least 12');
    await t.http.put(url(short)).set(short.admin.auth).send({ retentionMonths: 'twelve' }).expect(400);
    await t.http.put(url(short)).set(short.member.auth).send({ retentionMonths: 12 }).expect(403);
    await t.http.get(url(short)).set(standard.admin.auth).expect(404);
    await t.http.put(url(short)).set(short.admin.auth).send({ retentionMonths: 12 }).expect(200);
    const tooLong = await t.http.put(url(long)).set(long.admin.auth).send({ retentionMonths: 1201 }).expect(400);
    expect(JSON.stringify(tooLong.body)).toContain('retentionMonths must be at most 1200');
    const longest = await t.http.put(url(long)).set(long.admin.auth).send({ retentionMonths: 1200 }).expect(200);
    expect(longest.body).toMatchObject({ retentionMonths: 1200 });
    await t.http.put(url(long)).set(long.admin.auth).send({ retentionMonths: 24 }).expect(200);
    await expect(
      db.query(`UPDATE workspaces SET audit_retention_months = 6 WHERE id = $1`, [short.workspaceId]),
    ).rejects.toThrow('workspaces_audit_retention_months_check');
  });

  it('refuses in the database to remove an entry within its workspace retention, or a month younger than 12 months', async () => {
    const current = (await db.query<{ p: string }>(`SELECT audit_log_partition_name(now()) AS p`)).rows[0].p;
    await expect(db.query(`SELECT audit_log_drop_partition(gen_random_uuid(), $1)`, [current])).rejects.toThrow(
      'kept at least 12 months',
    );
    // Even with the retention flag set by hand, each entry keeps its own workspace's retention:
    // 14 months old is past 12 (short) but within 24 (long).
    for (const [workspace, removable] of [
      [long, false],
      [short, true],
    ] as const) {
      await db.query('BEGIN');
      try {
        await db.query(`SELECT set_config('audit_log.retention', 'on', true)`);
        const attempt = db.query(
          `DELETE FROM audit_log_sealed WHERE workspace_id = $1 AND resource_name LIKE '14 months %'`,
          [workspace.workspaceId],
        );
        if (removable) await expect(attempt).resolves.toMatchObject({ rowCount: 1 });
        else await expect(attempt).rejects.toThrow('is within its retention and cannot be removed');
      } finally {
        await db.query('ROLLBACK');
      }
    }
    await db.query('BEGIN');
    try {
      await expect(
        db.query(`DELETE FROM audit_log_sealed WHERE workspace_id = $1`, [short.workspaceId]),
      ).rejects.toThrow('audit_logs is append-only: DELETE is not allowed');
    } finally {
      await db.query('ROLLBACK');
    }
  });

  it('removes nothing while retention is switched off', async () => {
    const config = t.app.get<AppConfig>(APP_CONFIG);
    const before = await db.query(`SELECT count(*) FROM audit_logs`);
    config.auditRetentionEnabled = false;
    try {
      await retention.maintain();
    } finally {
      config.auditRetentionEnabled = true;
    }
    expect((await db.query(`SELECT count(*) FROM audit_logs`)).rows).toEqual(before.rows);
    expect((await db.query(`SELECT count(*)::int AS n FROM audit_retention_runs`)).rows[0].n).toBe(0);
  });

  it('removes exactly the entries past each workspace retention, whole months where all allow it', async () => {
    const oldMonths = (
      await db.query<{ p: string }>(
        `SELECT audit_log_partition_name(now() - interval '30 months') AS p
         UNION ALL SELECT audit_log_partition_name(now() - interval '25 months')`,
      )
    ).rows.map((r) => r.p);
    const run = await retention.applyRetention();
    expect(run).toMatchObject({ status: 'succeeded', droppedPartitions: oldMonths });
    expect(await remaining(short)).toEqual(['1 month', '12 months - 2 days']);
    expect(await remaining(standard)).toEqual(['1 month', '12 months + 5 days', '12 months - 2 days']);
    expect(await remaining(long)).toEqual(['1 month', '12 months + 5 days', '12 months - 2 days', '14 months']);
    const partitionsLeft = await retention.partitions();
    expect(partitionsLeft).not.toEqual(expect.arrayContaining([oldMonths[0]]));
    expect(partitionsLeft).not.toEqual(expect.arrayContaining([oldMonths[1]]));

    // Recorded: 2 entries each from the dropped months, then the short workspace's 14-month and
    // 250 entries of 12 months + 5 days (three batches of at most 100) and the standard one's 14-month.
    const counts = Object.fromEntries(run!.workspaces.map((w) => [w.workspaceId, w.entries]));
    expect(counts).toEqual({ [short.workspaceId]: 253, [standard.workspaceId]: 3, [long.workspaceId]: 2 });
    expect(run!.entriesRemoved).toBe(258);
    const { rows } = await db.query(
      `SELECT status, actor, entries_removed::int, dropped_partitions FROM audit_retention_runs`,
    );
    expect(rows).toEqual([
      { status: 'succeeded', actor: 'system', entries_removed: 258, dropped_partitions: oldMonths },
    ]);

    // The names of removed entries went with them; those of kept entries stay searchable.
    const { rows: names } = await db.query<{ name: string }>(
      `SELECT DISTINCT split_part(resource_name, ' ', 1) || ' ' || split_part(resource_name, ' ', 2) AS name
       FROM audit_resource_names WHERE workspace_id = $1 AND resource_type = 'segment'
         AND resource_name NOT LIKE 'Concurrent%' ORDER BY 1`,
      [short.workspaceId],
    );
    expect(names.map((n) => n.name)).toEqual(['1 month', '12 months']);
    expect(
      (await db.query(`SELECT 1 FROM audit_resource_names WHERE resource_name LIKE '12 months + 5 days%'`)).rows,
    ).toHaveLength(250 * 2);

    const shown = await t.http
      .get(`/api/workspaces/${short.workspaceId}/audit-retention`)
      .set(short.admin.auth)
      .expect(200);
    expect(shown.body).toMatchObject({
      retentionMonths: 12,
      removals: [{ runId: run!.runId, entries: 253, actor: 'system' }],
    });
    const removedBefore = new Date(shown.body.removals[0].removedBefore).getTime();
    const twelveMonthsAgo = new Date();
    twelveMonthsAgo.setUTCMonth(twelveMonthsAgo.getUTCMonth() - 12);
    expect(Math.abs(removedBefore - twelveMonthsAgo.getTime())).toBeLessThan(3 * 86_400_000);
  });

  it('keeps every chain verifiable where retention cut it, and still catches a removal of its own', async () => {
    for (const workspace of [short, standard, long]) {
      expect(await verify(workspace)).toMatchObject({ intact: true });
    }
    const [{ id }] = (
      await db.query<{ id: string }>(
        `SELECT id FROM audit_logs WHERE workspace_id = $1 ORDER BY seq LIMIT 1 OFFSET 1`,
        [long.workspaceId],
      )
    ).rows;
    await db.query('BEGIN');
    await db.query('SET LOCAL session_replication_role = replica'); // what only a superuser can do
    await db.query(`DELETE FROM audit_log_sealed WHERE id = $1`, [id]);
    await db.query('COMMIT');
    expect(await verify(long)).toMatchObject({
      intact: false,
      firstBroken: { reason: 'an entry before this one is missing' },
    });
    await expect(db.query(`DELETE FROM audit_chain_anchors`)).rejects.toThrow('append-only');
  });

  it('skips while another run is in progress, and takes over from one abandoned for 6 hours', async () => {
    const { rows: live } = await db.query<{ id: string }>(
      `INSERT INTO audit_retention_runs (id, started_at) VALUES (gen_random_uuid(), now() - interval '1 minute') RETURNING id`,
    );
    expect(await retention.applyRetention()).toBeUndefined();
    await db.query(`SELECT audit_retention_finish($1, 'ended by the test')`, [live[0].id]);
    await db.query(
      `INSERT INTO audit_retention_runs (id, started_at) VALUES (gen_random_uuid(), now() - interval '7 hours')`,
    );
    expect(await retention.applyRetention()).toMatchObject({ status: 'succeeded' });
    const { rows } = await db.query(
      `SELECT status, error FROM audit_retention_runs WHERE started_at < now() - interval '6 hours'`,
    );
    expect(rows).toEqual([{ status: 'failed', error: 'abandoned: still running after 6 hours' }]);
  });

  it('keeps the records of finished runs and their removals as they were', async () => {
    await retention.applyRetention();
    const { rows } = await db.query<{ id: string }>(
      `SELECT id FROM audit_retention_runs WHERE status = 'succeeded' AND entries_removed > 0 LIMIT 1`,
    );
    expect(rows).toHaveLength(1);
    for (const sql of [
      `UPDATE audit_retention_runs SET entries_removed = 0, status = 'failed', actor = 'someone-else' WHERE id = $1`,
      `UPDATE audit_retention_removals SET entries = 0 WHERE run_id = $1`,
      `DELETE FROM audit_retention_removals WHERE run_id = $1`,
      `DELETE FROM audit_retention_runs WHERE id = $1`,
    ]) {
      await expect(db.query(sql, [rows[0].id])).rejects.toThrow('append-only');
    }
  });

  it('runs once at a time and a second run finds nothing more to remove', async () => {
    const [first, second] = await Promise.all([retention.applyRetention(), retention.applyRetention()]);
    const ran = [first, second].filter((r) => r !== undefined);
    expect(ran.length).toBeGreaterThanOrEqual(1);
    for (const r of ran) expect(r).toMatchObject({ status: 'succeeded', entriesRemoved: 0, droppedPartitions: [] });
  });
});
