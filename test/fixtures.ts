import type { Client } from 'pg';

/**
 * Adds fixture entries with chosen times where the capture writes them (the inbox), then seals them
 * like every other entry, so that they are chained and indexed. `select` yields the columns named in
 * `columns` (which must include `actor_kind`). Only the database owner may do this.
 */
export async function addEntries(db: Client, columns: string, select: string, params: unknown[] = []): Promise<void> {
  await db.query(`INSERT INTO audit_log_inbox (${columns}) ${select}`, params);
  await db.query('SELECT audit_log_seal(2147483647, true)');
}

/** `count` segment updates in a workspace, one a second back from now, each with a change of `size` characters. */
export async function addSegmentUpdates(db: Client, workspaceId: string, count: number, size: number): Promise<void> {
  await addEntries(
    db,
    'id, workspace_id, occurred_at, action, resource_type, resource_id, resource_name, actor_kind, changes',
    `SELECT gen_random_uuid(), $1, now() - (g || ' seconds')::interval, 'updated', 'segment', gen_random_uuid(),
            'Segment ' || g, 'system', jsonb_build_array(jsonb_build_object('field', 'definition', 'after', repeat('x', $3)))
     FROM generate_series(1, $2::int) g`,
    [workspaceId, count, size],
  );
}
