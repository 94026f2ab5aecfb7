import { SECRET_KEY } from './audited-resources';

export const REDACTED = '[REDACTED]';

export type JsonLeaf = string | number | boolean | null | Record<string, never> | [];

export interface FieldChange {
  field: string;
  before?: JsonLeaf;
  after?: JsonLeaf;
}

interface Leaf {
  value: JsonLeaf;
  secret: boolean;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function leafValue(value: unknown): JsonLeaf {
  if (value instanceof Date) return value.toISOString();
  if (value === undefined) return null;
  if (typeof value === 'bigint') return value.toString();
  return value as JsonLeaf;
}

/**
 * Flattens a row into leaf paths (`config.host`, `definition.rules[0].value`). Under a field listed
 * in `secretFields`, every leaf below a key matching SECRET_KEY is marked secret.
 */
export function flatten(
  row: Record<string, unknown>,
  fields: readonly string[],
  secretFields: readonly string[],
): Map<string, Leaf> {
  const out = new Map<string, Leaf>();
  const walk = (value: unknown, path: string, secret: boolean, secretScope: boolean): void => {
    if (isPlainObject(value)) {
      const keys = Object.keys(value);
      if (keys.length === 0) out.set(path, { value: {}, secret });
      for (const key of keys) {
        walk(value[key], `${path}.${key}`, secret || (secretScope && SECRET_KEY.test(key)), secretScope);
      }
    } else if (Array.isArray(value)) {
      if (value.length === 0) out.set(path, { value: [], secret });
      value.forEach((item, index) => walk(item, `${path}[${index}]`, secret, secretScope));
    } else {
      out.set(path, { value: leafValue(value), secret });
    }
  };
  for (const field of fields) {
    if (field in row) walk(row[field], field, false, secretFields.includes(field));
  }
  return out;
}

function sameLeaf(a: JsonLeaf, b: JsonLeaf): boolean {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    return Array.isArray(a) === Array.isArray(b);
  }
  return a === b;
}

const shown = (leaf: Leaf): JsonLeaf => (leaf.secret ? REDACTED : leaf.value);

/**
 * Field-level changes between two states of a row; `before` or `after` undefined for a creation
 * or a deletion. Secret leaves are compared on their real values and recorded as REDACTED.
 */
export function diffRows(
  before: Record<string, unknown> | undefined,
  after: Record<string, unknown> | undefined,
  fields: readonly string[],
  secretFields: readonly string[],
): FieldChange[] {
  const old = before ? flatten(before, fields, secretFields) : new Map<string, Leaf>();
  const next = after ? flatten(after, fields, secretFields) : new Map<string, Leaf>();
  const changes: FieldChange[] = [];
  for (const [field, leaf] of old) {
    const now = next.get(field);
    if (!now) changes.push({ field, before: shown(leaf) });
    else if (!sameLeaf(leaf.value, now.value)) changes.push({ field, before: shown(leaf), after: shown(now) });
  }
  for (const [field, leaf] of next) {
    if (!old.has(field)) changes.push({ field, after: shown(leaf) });
  }
  return changes;
}
