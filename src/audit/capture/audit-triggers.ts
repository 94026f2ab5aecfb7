import type { SqlExecutor } from '../../database/sql-executor';
import { AUDITED_RESOURCES, type CaptureKnobs, SECRET_KEY, URL_PASSWORD } from './audited-resources';

/** The knobs as `audit_attach` reads them (snake_case keys); none for a table shaped like a resource. */
export function captureOptions(knobs: CaptureKnobs = {}): Record<string, unknown> {
  const options: Record<string, unknown> = {
    workspace: knobs.workspace,
    workspaces: knobs.workspaces,
    resource_id: knobs.resourceId,
    resource_name: knobs.resourceName,
    field_prefix: knobs.fieldPrefix,
    ignored_columns: knobs.ignoredColumns,
    context_fields: knobs.contextFields,
    omit_null_created: knobs.omitNullCreated,
    insert_action: knobs.insertAction,
    update_action: knobs.updateAction,
    stamped: knobs.stamped,
    fixed_columns: knobs.fixedColumns,
  };
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

/**
 * Attaches the database's capture triggers to every table of the registry, with its resource type,
 * secret fields, the secret rule and its capture knobs. Idempotent: a table whose configuration has
 * not changed is left alone. Runs after the migrations, as the database owner. Returns the tables
 * it (re)attached.
 */
export async function attachAuditTriggers(db: SqlExecutor): Promise<string[]> {
  const [{ knobs, plain }] = await db.query<{ knobs: boolean; plain: boolean }>(
    `SELECT to_regprocedure('audit_attach(text, text, text[], text, text, jsonb)') IS NOT NULL AS knobs,
            to_regprocedure('audit_attach(text, text, text[], text, text)') IS NOT NULL AS plain`,
  );
  const attached: string[] = [];
  for (const resource of AUDITED_RESOURCES) {
    const args = [resource.table, resource.type, [...resource.secretFields], SECRET_KEY.source, URL_PASSWORD.source];
    let changed: boolean;
    if (knobs) {
      [{ changed }] = await db.query<{ changed: boolean }>(
        'SELECT "audit_attach"($1, $2, $3::text[], $4, $5, $6::jsonb) AS changed',
        [...args, JSON.stringify(captureOptions(resource.capture))],
      );
    } else if (plain && !resource.capture) {
      // A database migrated only as far as the capture without knobs: the resources' tables.
      [{ changed }] = await db.query<{ changed: boolean }>(
        'SELECT "audit_attach"($1, $2, $3::text[], $4, $5) AS changed',
        args,
      );
    } else {
      continue;
    }
    if (changed) attached.push(resource.table);
  }
  return attached;
}
