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
