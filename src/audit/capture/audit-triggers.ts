import type { SqlExecutor } from '../../database/sql-executor';
import { AUDITED_RESOURCES, SECRET_KEY, URL_PASSWORD } from './audited-resources';

/**
 * Attaches the database's capture triggers to every table of the registry, with its resource type,
 * secret fields and the secret rule. Idempotent: a table whose configuration has not changed is left
 * alone. Runs after the migrations, as the database owner. Returns the tables it (re)attached.
 */
export async function attachAuditTriggers(db: SqlExecutor): Promise<string[]> {
  const [{ available }] = await db.query<{ available: boolean }>(
    `SELECT to_regprocedure('audit_attach(text, text, text[], text, text)') IS NOT NULL AS available`,
  );
  if (!available) return [];
  const attached: string[] = [];
  for (const resource of AUDITED_RESOURCES) {
    const [{ changed }] = await db.query<{ changed: boolean }>(
      'SELECT "audit_attach"($1, $2, $3::text[], $4, $5) AS changed',
      [resource.table, resource.type, [...resource.secretFields], SECRET_KEY.source, URL_PASSWORD.source],
    );
    if (changed) attached.push(resource.table);
  }
  return attached;
}
