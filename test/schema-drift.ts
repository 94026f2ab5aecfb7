import { get_dmmf } from '@prisma/prisma-schema-wasm';
import type { Client } from 'pg';

interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: 'scalar' | 'object' | 'enum' | 'unsupported';
  type: string;
  isList: boolean;
  isRequired: boolean;
  nativeType?: [string, string[]] | null;
}
interface DmmfModel {
  name: string;
  dbName: string | null;
  fields: DmmfField[];
}
interface DmmfIndex {
  model: string;
  type: 'id' | 'unique' | 'normal' | 'fulltext';
  fields: { name: string; sortOrder?: 'asc' | 'desc' }[];
}

/** What PostgreSQL type a Prisma scalar field maps to, as information_schema spells it. */
function expectedType(field: DmmfField): string {
  if (field.kind === 'enum') return field.type;
  const native = field.nativeType?.[0];
  const base =
    native === 'Uuid'
      ? 'uuid'
      : native === 'Timestamptz'
        ? `timestamptz(${field.nativeType?.[1][0] ?? 3})`
        : ((
            {
              String: 'text',
              Boolean: 'bool',
              Int: 'int4',
              BigInt: 'int8',
              Float: 'float8',
              Json: 'jsonb',
              DateTime: 'timestamp(3)',
            } as Record<string, string>
          )[field.type] ?? field.type);
  return field.isList ? `${base}[]` : base;
}

/**
 * Differences between `schema.prisma` and a migrated database: tables, columns, types,
 * nullability, and the primary keys, unique constraints and indexes the schema declares.
 */
export async function schemaDrift(schemaText: string, client: Client): Promise<string[]> {
  const dmmf = JSON.parse(get_dmmf(JSON.stringify({ prismaSchema: schemaText }))) as {
    datamodel: { models: DmmfModel[]; indexes: DmmfIndex[] };
  };
  const { rows: columns } = await client.query<{ table: string; column: string; type: string; nullable: boolean }>(`
    SELECT c.relname AS "table", a.attname AS "column", NOT a.attnotnull AS nullable,
           CASE WHEN t.typname = 'timestamptz' THEN 'timestamptz(' || a.atttypmod || ')'
                WHEN t.typname = 'timestamp' THEN 'timestamp(' || a.atttypmod || ')'
                WHEN t.typcategory = 'A' THEN substr(t.typname, 2) || '[]'
                ELSE t.typname END AS "type"
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
    JOIN pg_type t ON t.oid = a.atttypid
    WHERE a.attnum > 0 AND NOT a.attisdropped`);
  const { rows: indexes } = await client.query<{
    table: string;
    primary: boolean;
    unique: boolean;
    columns: string[];
  }>(`
    SELECT t.relname AS "table", ix.indisprimary AS "primary", ix.indisunique AS "unique",
           array(SELECT a.attname || CASE WHEN (ix.indoption[k] & 1) = 1 THEN ' desc' ELSE '' END
                 FROM generate_subscripts(ix.indkey, 1) AS k
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ix.indkey[k]
                 -- Key columns only: Prisma's schema has no words for an index's INCLUDE columns.
                 WHERE k < ix.indnkeyatts
                 ORDER BY k) AS columns
    FROM pg_index ix
    JOIN pg_class t ON t.oid = ix.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()`);

  const drift: string[] = [];
  const columnName = new Map<string, Map<string, string>>();
  for (const model of dmmf.datamodel.models) {
    const table = model.dbName ?? model.name;
    const actual = new Map(columns.filter((c) => c.table === table).map((c) => [c.column, c]));
    if (actual.size === 0) {
      drift.push(`table ${table} (model ${model.name}) is missing`);
      continue;
    }
    const names = new Map<string, string>();
    for (const field of model.fields.filter((f) => f.kind === 'scalar' || f.kind === 'enum')) {
      const column = field.dbName ?? field.name;
      names.set(field.name, column);
      const found = actual.get(column);
      actual.delete(column);
      if (!found) {
        drift.push(`${table}.${column} (${model.name}.${field.name}) is missing`);
        continue;
      }
      if (found.type !== expectedType(field)) {
        drift.push(`${table}.${column} is ${found.type}, schema says ${expectedType(field)}`);
      }
      const nullable = !field.isRequired && !field.isList;
      if (found.nullable !== nullable) {
        drift.push(
          `${table}.${column} is ${found.nullable ? '' : 'NOT '}NULL, schema says ${nullable ? '' : 'NOT '}NULL`,
        );
      }
    }
    for (const extra of actual.keys()) drift.push(`${table}.${extra} exists but is not in the schema`);
    columnName.set(model.name, names);
  }
  for (const index of dmmf.datamodel.indexes) {
    const model = dmmf.datamodel.models.find((m) => m.name === index.model)!;
    const table = model.dbName ?? model.name;
    const wanted = index.fields.map(
      (f) => `${columnName.get(model.name)?.get(f.name) ?? f.name}${f.sortOrder === 'desc' ? ' desc' : ''}`,
    );
    const found = indexes.some(
      (ix) =>
        ix.table === table &&
        ix.columns.join(',') === wanted.join(',') &&
        (index.type === 'id' ? ix.primary : index.type === 'unique' ? ix.unique && !ix.primary : !ix.unique),
    );
    if (!found) drift.push(`${index.type} index on ${table}(${wanted.join(', ')}) is missing`);
  }
  return drift;
}
