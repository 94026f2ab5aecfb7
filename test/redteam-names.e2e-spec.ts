import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { AuditSealerService } from '../src/audit/seal/audit-sealer.service';
import { runAsSystem } from '../src/request-context/run-with-actor';
import { ResourceFactory } from './factories';
import { until } from './until';
import { createTestApp, createWorkspace, exportText, type TestApp, type TestWorkspace } from './test-app';

/**
 * Red team of the audit-log name search (`page()` in src/audit/query/audit-logs.service.ts): every
 * case compares what the API answers, page by page, with the oracle, a plain sequential scan of the
 * log with the same filters and `resource_name ILIKE '%' || escaped term || '%'`.
 */

interface Entry {
  id: string;
  occurredAt: string;
  resourceType: string;
  resourceId: string;
  resourceName: string;
}
interface Page {
  items: Entry[];
  nextCursor: string | null;
}
interface Filter {
  resourceName: string;
  userId?: string[];
  resourceType?: string[];
  action?: string[];
  requestId?: string;
  resourceId?: string;
  from?: string;
  to?: string;
}
interface Fixture {
  name: string;
  /** Minutes before now (fractions allowed), or an exact instant. */
  minutesAgo?: number;
  at?: string;
  type?: string;
  resourceId?: string;
  action?: string;
  actorId?: string | null;
  requestId?: string | null;
}

describe('Red team: name search answers as the oracle does', () => {
  let t: TestApp;
  let pg: Client;
  let oracleDb: Client;

  beforeAll(async () => {
    // No timer: each case seals when it means to.
    t = await createTestApp({ auditSealIntervalMs: 0 });
    pg = new Client({ connectionString: t.database.url });
    await pg.connect();
    oracleDb = new Client({ connectionString: t.database.url });
    await oracleDb.connect();
    // The oracle reads the log row by row: no index (trigram or other) can make it agree with the API by accident.
    await oracleDb.query('SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off');
  });
  afterAll(async () => {
    await oracleDb.end();
    await pg.end();
    await t.close();
  });

  const seal = () => t.app.get(AuditSealerService).seal();

  /** Appends entries to the inbox as the capture would; returns their ids, in the order given. */
  const append = async (ws: TestWorkspace, fixtures: Fixture[]): Promise<string[]> => {
    const rows = fixtures.map((f) => ({
      id: randomUUID(),
      workspace_id: ws.workspaceId,
      occurred_at: f.at ?? new Date(Date.now() - (f.minutesAgo ?? 0) * 60_000).toISOString(),
      action: f.action ?? 'updated',
      resource_type: f.type ?? 'segment',
      resource_id: f.resourceId ?? randomUUID(),
      resource_name: f.name,
      actor_id: f.actorId ?? null,
      actor_name: f.actorId ? 'Fixture' : null,
      actor_email: f.actorId ? 'fixture@acme.test' : null,
      request_id: f.requestId ?? null,
      changes: [],
    }));
    for (let i = 0; i < rows.length; i += 2000) {
      await pg.query('SELECT audit_log_append($1::jsonb)', [JSON.stringify(rows.slice(i, i + 2000))]);
    }
    return rows.map((r) => r.id);
  };

  const query = (filter: Filter, limit: number, cursor?: string): Record<string, string> => {
    const q: Record<string, string> = { resourceName: filter.resourceName, limit: String(limit) };
    for (const key of ['userId', 'resourceType', 'action'] as const) {
      if (filter[key]?.length) q[key] = filter[key].join(',');
    }
    for (const key of ['requestId', 'resourceId', 'from', 'to'] as const) {
      if (filter[key]) q[key] = filter[key];
    }
    if (cursor) q.cursor = cursor;
    return q;
  };

  const getPage = async (ws: TestWorkspace, filter: Filter, limit: number, cursor?: string) => {
    const res = await t.http
      .get(`/api/workspaces/${ws.workspaceId}/audit-logs`)
      .query(query(filter, limit, cursor))
      .set(ws.admin.auth);
    return res;
  };

  /** Every page of the API's answer, as ids; throws on a status other than 200. */
  const apiPages = async (ws: TestWorkspace, filter: Filter, limit: number): Promise<string[][]> => {
    const pages: string[][] = [];
    let cursor: string | undefined;
    for (let n = 0; n < 500; n++) {
      const res = await getPage(ws, filter, limit, cursor);
      if (res.status !== 200) throw new Error(`${res.status} ${JSON.stringify(res.body)}`);
      const page = res.body as Page;
      pages.push(page.items.map((e) => e.id));
      if (!page.nextCursor) return pages;
      cursor = page.nextCursor;
    }
    throw new Error('more than 500 pages');
  };

  /** The oracle: the same filters and a plain ILIKE of the escaped term, newest first. */
  const oracle = async (ws: TestWorkspace, filter: Filter, limit?: number): Promise<string[]> => {
    const params: unknown[] = [ws.workspaceId, filter.resourceName];
    const where = [
      'workspace_id = $1::uuid',
      `resource_name ILIKE '%' || replace(replace(replace($2::text, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'`,
    ];
    const add = (sql: (p: string) => string, value: unknown) => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (filter.userId?.length) add((p) => `actor_id = ANY(${p}::uuid[])`, filter.userId);
    if (filter.resourceType?.length) add((p) => `resource_type = ANY(${p}::text[])`, filter.resourceType);
    if (filter.action?.length) add((p) => `action = ANY(${p}::text[])`, filter.action);
    if (filter.requestId) add((p) => `request_id = ${p}`, filter.requestId);
    if (filter.resourceId) add((p) => `resource_id = ${p}::uuid`, filter.resourceId);
    if (filter.from) add((p) => `occurred_at >= ${p}::timestamptz`, filter.from);
    if (filter.to) add((p) => `occurred_at < ${p}::timestamptz`, filter.to);
    let sql = `SELECT id FROM audit_logs WHERE ${where.join(' AND ')} ORDER BY occurred_at DESC, id DESC`;
    if (limit !== undefined) {
      params.push(limit);
      sql += ` LIMIT $${params.length}`;
    }
    return (await oracleDb.query<{ id: string }>(sql, params)).rows.map((r) => r.id);
  };

  /** The first page equals the oracle's first `limit`, and all pages together equal the oracle. */
  const expectOracle = async (ws: TestWorkspace, filter: Filter, limit = 50) => {
    const pages = await apiPages(ws, filter, limit);
    expect({ filter, limit, first: pages[0] }).toEqual({ filter, limit, first: await oracle(ws, filter, limit) });
    expect({ filter, limit, all: pages.flat() }).toEqual({ filter, limit, all: await oracle(ws, filter) });
  };

  /**
   * Each term agrees with the oracle while its entries (2 minutes old or more) wait in the inbox, once
   * sealed, and once 1,500 newer entries have pushed them out of the newest-entries window (the
   * by-resource path; pages of `limit`).
   */
  const expectOnEveryPath = async (
    ws: TestWorkspace,
    terms: string[],
    limit: number,
    others: Omit<Filter, 'resourceName'>[] = [{}],
  ) => {
    const searches = terms.flatMap((resourceName) => others.map((other) => ({ ...other, resourceName })));
    for (const search of searches) await expectOracle(ws, search);
    await seal();
    for (const search of searches) await expectOracle(ws, search);
    await append(
      ws,
      Array.from({ length: 1500 }, (_, i) => ({ name: `Filler ${i % 5}`, minutesAgo: 1 - i / 2000 })),
    );
    await seal();
    for (const search of searches) await expectOracle(ws, search, limit);
  };

  describe('differences from the oracle the red team found (each failed before its fix)', () => {
    it('finds, with a resourceType filter, the entries of a resource first recorded under another type (sealed)', async () => {
      // One resource, two entries of the same name under two types. audit_resource_names keys a name
      // by (workspace, resource, name) and keeps the type of the first entry sealed with it: the
      // by-resource path filtered that table by type, so it never reached the model entry.
      const ws = await createWorkspace(t.app, 'Types');
      const resourceId = randomUUID();
      await append(ws, [{ name: 'Pelican One', type: 'source', resourceId, minutesAgo: 10 }]);
      await seal();
      const [modelEntry] = await append(ws, [{ name: 'Pelican One', type: 'model', resourceId, minutesAgo: 5 }]);
      await expectOracle(ws, { resourceName: 'pelican', resourceType: ['model'] }); // unsealed: the inbox is read
      await seal();
      const filter = { resourceName: 'pelican', resourceType: ['model'] };
      expect(await oracle(ws, filter)).toEqual([modelEntry]);
      await expectOracle(ws, filter); // before its fix the API answered [] (oracle: [modelEntry])
    });

    it('finds the exports of a workspace named "Audit log" with resourceType=audit_log', async () => {
      // The same miss, reached through the API alone: a workspace's entries and the entries of its
      // log's reads share the resource id (the workspace's id); when the workspace is named
      // "Audit log", both have the name 'Audit log', and the names table keeps type `workspace`.
      const ws = await createWorkspace(t.app, 'Audit log');
      await seal();
      await exportText(t, ws, 'format=csv');
      await seal();
      const filter = { resourceName: 'audit log', resourceType: ['audit_log'] };
      expect(await oracle(ws, filter)).toHaveLength(1);
      await expectOracle(ws, filter); // before its fix the API answered [] (oracle: the `exported` entry)
    });

    it('finds the rename of a workspace to "Audit log" after its exports, with resourceType=workspace', async () => {
      // The other way round: the exports are sealed first, so the name keeps type `audit_log`.
      const renamed = await createWorkspace(t.app, 'Chronicle');
      await exportText(t, renamed, 'format=csv');
      await seal();
      await runAsSystem('red team', () =>
        t.prisma.workspace.update({ where: { id: renamed.workspaceId }, data: { name: 'Audit log' } }),
      );
      await seal();
      const rename = { resourceName: 'audit log', resourceType: ['workspace'] };
      expect(await oracle(renamed, rename)).toHaveLength(1);
      await expectOracle(renamed, rename); // before its fix the API answered [] (oracle: the rename)
    });

    it('finds an entry sealed while retention forgot the names of removed entries (sealer and retention at once)', async () => {
      // Retention removes an old entry named 'Heron Lake'; a new entry of the same resource with the
      // same name waits in the inbox. The sealer's INSERT … ON CONFLICT DO NOTHING into
      // audit_resource_names finds the old row and leaves it; `audit_resource_names_forget`, in a
      // snapshot that could not see the sealer's uncommitted entry, deleted that row. Both committed:
      // the entry was sealed and no candidate list (names, cut names, inbox) led to it again.
      const ws = await createWorkspace(t.app, 'Forget race');
      const resourceId = randomUUID();
      await append(ws, [{ name: 'Heron Lake', resourceId, at: new Date(Date.now() - 600 * 86_400_000).toISOString() }]);
      await seal();
      const {
        rows: [{ run }],
      } = await pg.query<{ run: string }>(`SELECT audit_retention_begin('red team') AS run`);
      await pg.query('SELECT audit_log_purge($1::uuid, $2::uuid, 1000)', [run, ws.workspaceId]);
      await pg.query('SELECT audit_retention_finish($1::uuid, NULL)', [run]);
      const [fresh] = await append(ws, [{ name: 'Heron Lake', resourceId, minutesAgo: 1 }]);

      const sealer = new Client({ connectionString: t.database.url });
      await sealer.connect();
      try {
        await sealer.query('BEGIN');
        await sealer.query('SELECT audit_log_seal(5000, true)');
        // Forgetting waits for the sealer's lock, then sees what it sealed.
        let forgotten = false;
        const forgetting = pg
          .query('SELECT audit_resource_names_forget($1::uuid)', [ws.workspaceId])
          .finally(() => (forgotten = true));
        await until('the forget waiting for the sealer, or done', async () => {
          if (forgotten) return true;
          const { rows } = await sealer.query(
            `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND query LIKE '%audit_resource_names_forget%' AND pid <> pg_backend_pid()`,
          );
          return rows.length ? true : undefined;
        });
        await sealer.query('COMMIT');
        await forgetting;
      } finally {
        await sealer.end();
      }
      const filter = { resourceName: 'heron' };
      expect(await oracle(ws, filter)).toEqual([fresh]);
      await expectOracle(ws, filter); // before its fix the API answered [] (oracle: [fresh])
    });

    it('takes `to` and `from` to the microsecond, as the oracle does', async () => {
      // Not the name search's own: `where()` turns from/to into a JavaScript Date, which drops the
      // microseconds the DTO accepts (INSTANT allows 1 to 6 fractional digits).
      const ws = await createWorkspace(t.app, 'Micro');
      const at = '2021-03-04T10:00:00.000Z';
      await append(ws, [{ name: 'Tern boundary', at }]);
      await seal();
      const before = { resourceName: 'tern', to: '2021-03-04T10:00:00.000400Z' };
      expect(await oracle(ws, before)).toHaveLength(1);
      const after = { resourceName: 'tern', from: '2021-03-04T10:00:00.000400Z' };
      expect(await oracle(ws, after)).toHaveLength(0);
      const answers = async (filter: Filter) => ({
        filter,
        ids: (await apiPages(ws, filter, 50)).flat(),
      });
      // Before the fix: `to` gave [] (oracle: the entry at .000, before .0004); `from` gave [the entry] (oracle: []).
      expect([await answers(before), await answers(after)]).toEqual([
        { filter: before, ids: await oracle(ws, before) },
        { filter: after, ids: await oracle(ws, after) },
      ]);
    });
  });

  describe('pinned behaviours (these pass)', () => {
    it('agrees on an entry of a second type while it is still in the inbox, and without a type filter once sealed', async () => {
      const ws = await createWorkspace(t.app, 'Types inbox');
      const resourceId = randomUUID();
      await append(ws, [
        { name: 'Gannet One', type: 'source', resourceId, minutesAgo: 10 },
        { name: 'Gannet One', type: 'model', resourceId, minutesAgo: 5 },
      ]);
      await expectOracle(ws, { resourceName: 'gannet', resourceType: ['model'] });
      await expectOracle(ws, { resourceName: 'gannet', resourceType: ['source'] });
      await seal();
      // Sealed in one batch, only one of the two types is kept for the name; the search does not
      // depend on it.
      await expectOracle(ws, { resourceName: 'gannet' });
      await expectOracle(ws, { resourceName: 'gannet', resourceType: ['model'] });
      await expectOracle(ws, { resourceName: 'gannet', resourceType: ['source'] });
      await expectOracle(ws, { resourceName: 'gannet', resourceType: ['source', 'model'] });
      await expectOracle(ws, { resourceName: 'gannet', resourceType: ['source', 'model', 'member'] }, 1);
    });

    it('folds case as ILIKE does: İ, ẞ/ß, Σ/ς/σ, K (Kelvin), combining marks', async () => {
      const ws = await createWorkspace(t.app, 'Unicode');
      await append(ws, [
        { name: 'İSTANBUL office', minutesAgo: 9 },
        { name: 'istanbul office', minutesAgo: 8 },
        { name: 'GROẞE Straße', minutesAgo: 7 },
        { name: 'ΟΔΥΣΣΕΥΣ', minutesAgo: 6 },
        { name: 'οδυσσευς', minutesAgo: 5 },
        { name: '\u212Aelvin scale', minutesAgo: 4 },
        { name: 'Cafe\u0301 noir', minutesAgo: 3 },
        { name: 'Café noir', minutesAgo: 2 },
      ]);
      const terms = ['istanbul', 'İstanbul', 'ISTANBUL', 'große', 'GROSSE', 'straße', 'ΣΕΥΣ', 'σευς', 'σευσ', 'kelvin'];
      const more = ['\u212Aelvin', 'café', 'cafe\u0301', 'e\u0301 n', 'É NOIR'];
      await expectOnEveryPath(ws, [...terms, ...more], 5);
    });

    it('agrees on names of 511, 512 and 513 characters, multibyte characters at the cut, and terms across it', async () => {
      const ws = await createWorkspace(t.app, 'Cut');
      const pad = (n: number) => 'x'.repeat(n);
      const names = [
        `${pad(508)}Rook`, // 512
        `${pad(507)}Rook`, // 511
        `${pad(509)}Rook`, // 513: 'k' is character 513
        `${pad(510)}😀Ωmega`, // astral character at 511, Ω at 512
        `${pad(511)}ÉGRET`, // É is character 512
        `${pad(511)}😀É`, // astral character is character 512
        `${'Äb'.repeat(300)}Loon`, // past the cut, multibyte throughout
      ];
      await append(
        ws,
        names.map((name, i) => ({ name, minutesAgo: 5000 - i, actorId: ws.admin.id })),
      );
      const terms = ['rook', 'xrook', 'ook', '😀ωmega', 'ωme', 'égret', 'xégr', '😀é', 'äbloon', 'bäb', 'xxx'];
      // With a user filter the window reads keys from the user's index, and the long names by their own list.
      await expectOnEveryPath(ws, terms, 3, [{}, { userId: [ws.admin.id] }]);
    });

    it('puts a match past the cut, and an unsealed one, in its place among the newest entries, with a user filter', async () => {
      // The newest match is a 600-character name matching past the 512 the names keep; older short
      // names fill the window's page, so leaving the long one out would still fill it, wrongly.
      const ws = await createWorkspace(t.app, 'Cut window');
      await append(ws, [
        { name: `${'x'.repeat(596)} Rook`, minutesAgo: 1, actorId: ws.admin.id },
        ...Array.from({ length: 6 }, (_, i) => ({ name: `Rook ${i}`, minutesAgo: 10 + i, actorId: ws.admin.id })),
      ]);
      await seal();
      for (const userId of [undefined, [ws.admin.id]]) await expectOracle(ws, { resourceName: 'rook', userId }, 2);
      // A newer match not sealed yet is in no names table: the inbox names it.
      await append(ws, [{ name: 'Rook unsealed', minutesAgo: 0, actorId: ws.admin.id }]);
      for (const userId of [undefined, [ws.admin.id]]) await expectOracle(ws, { resourceName: 'rook', userId }, 2);
    });

    it('matches %, _ and \\ literally on every path, and terms of exactly 3 characters', async () => {
      const ws = await createWorkspace(t.app, 'Escapes');
      await append(ws, [
        { name: '100% real_data\\x', minutesAgo: 3000 },
        { name: '100 percent realXdata', minutesAgo: 2999 },
        { name: 'a\\\\b', minutesAgo: 2998 },
        { name: 'a\\b', minutesAgo: 2997 },
        { name: '%%%', minutesAgo: 2996 },
        { name: '___', minutesAgo: 2995 },
        { name: 'abc', minutesAgo: 2994 },
      ]);
      const terms = ['0% ', '% r', 'l_d', 'a\\x', '\\\\', 'a\\b', '%%%', '___', '_', '%', '\\', 'ABC', 'bc', 'a\\\\b'];
      await expectOnEveryPath(ws, terms, 4);
    });

    it('pages across the window boundary with renames and every filter, each entry once and in order', async () => {
      const ws = await createWorkspace(t.app, 'Paging');
      const user = ws.admin.id;
      const resources = Array.from({ length: 6 }, () => randomUUID());
      const fixtures: Fixture[] = [];
      // 900 entries, one every 6 seconds: a match every 13th, its resource renamed back and forth.
      for (let i = 0; i < 900; i++) {
        const r = i % 6;
        const matching = i % 13 === 0;
        fixtures.push({
          name: matching ? (i % 2 ? `Plover ${r}` : `PLOVER-${r} (old)`) : `Sandpiper ${i % 4}`,
          resourceId: matching ? resources[r] : undefined,
          type: r % 2 ? 'model' : 'segment',
          action: i % 3 ? 'updated' : 'created',
          actorId: i % 5 ? user : null,
          requestId: i % 7 ? null : 'req-7',
          minutesAgo: i / 10,
        });
      }
      await append(ws, fixtures);
      const filters: Filter[] = [
        { resourceName: 'plover' },
        { resourceName: 'plover', userId: [user] },
        { resourceName: 'plover', resourceType: ['model'] },
        { resourceName: 'plover', action: ['created'] },
        { resourceName: 'plover', requestId: 'req-7' },
        { resourceName: 'plover', resourceId: resources[2] },
        {
          resourceName: 'over',
          from: new Date(Date.now() - 60 * 60_000).toISOString(),
          to: new Date(Date.now() - 20 * 60_000).toISOString(),
        },
        { resourceName: '(old)', userId: [user], action: ['created', 'updated'], resourceType: ['segment', 'model'] },
      ];
      for (const filter of filters) await expectOracle(ws, filter, 2);
      await seal();
      for (const filter of filters) {
        await expectOracle(ws, filter, 2);
        await expectOracle(ws, filter, 7);
      }
    });

    it('agrees on the names of members, API tokens, the workspace and its streams, before and after renames', async () => {
      const ws = await createWorkspace(t.app, 'Osprey Works');
      const admin = ws.admin.id;
      await runAsSystem('red team', async () => {
        await t.prisma.user.update({ where: { id: admin }, data: { name: 'Kittiwake Admin' } });
        await t.prisma.workspace.update({ where: { id: ws.workspaceId }, data: { name: 'Osprey Renamed' } });
      });
      await new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth).create('sources', { name: 'Kittiwake feed' });
      const terms = ['member', 'kittiwake', 'osprey', 'renamed', 'admin', 'audit log', 'token'];
      for (const resourceName of terms) await expectOracle(ws, { resourceName });
      await seal();
      for (const resourceName of terms) {
        await expectOracle(ws, { resourceName });
        await expectOracle(ws, { resourceName, resourceType: ['member', 'workspace'] });
      }
    });

    it('forgets the names of removed entries without losing those still in the log (retention, no race)', async () => {
      const ws = await createWorkspace(t.app, 'Retention');
      const resourceId = randomUUID();
      const old = new Date(Date.now() - 600 * 86_400_000).getTime();
      await append(ws, [
        { name: 'Skua old', resourceId, at: new Date(old).toISOString() },
        { name: `${'y'.repeat(520)}Skua long`, resourceId, at: new Date(old + 1000).toISOString() },
        { name: `${'y'.repeat(520)}Skua long`, resourceId, minutesAgo: 3 },
        { name: 'Skua now', resourceId, minutesAgo: 2 },
      ]);
      await seal();
      const {
        rows: [{ run }],
      } = await pg.query<{ run: string }>(`SELECT audit_retention_begin('red team') AS run`);
      await pg.query('SELECT audit_log_purge($1::uuid, $2::uuid, 1000)', [run, ws.workspaceId]);
      await pg.query('SELECT audit_retention_finish($1::uuid, NULL)', [run]);
      await pg.query('SELECT audit_resource_names_forget($1::uuid)', [ws.workspaceId]);
      for (const resourceName of ['skua', 'skua old', 'skua long', 'yskua', 'skua now']) {
        await expectOracle(ws, { resourceName });
      }
    });
  });
});
