import { createHash } from 'node:crypto';

/**
 * The TypeScript twin of the database's `audit_log_digest(prev_hash, entry)` (see the migration
 * 20261126120000_capture_in_database): an entry's chain hash, recomputed without a database so that
 * an export can be verified offline. Both must agree byte for byte; test/digests.e2e-spec.ts checks
 * them against each other on generated entries.
 *
 *   hash = hex(sha256(utf8(concat_ws('|',
 *            quote_nullable(prev_hash), seq, id, workspace_id, occurred_at as YYYY-MM-DDTHH:MI:SS.US (UTC),
 *            quote_nullable(action), quote_nullable(resource_type), resource_id, quote_nullable(resource_name),
 *            quote_nullable(actor_id), quote_nullable(actor_name), quote_nullable(actor_email),
 *            quote_nullable(request_id), quote_nullable(ip), quote_nullable(user_agent),
 *            quote_nullable(changes::text), actor_kind))))
 *
 * concat_ws skips a NULL argument: only `actor_kind` can be NULL unquoted, and then it adds nothing.
 */
export interface ChainedEntryFields {
  seq: number;
  prevHash: string;
  id: string;
  workspaceId: string;
  /** ISO-8601 in UTC, e.g. 2026-11-26T13:20:35.123Z (the log keeps milliseconds). */
  occurredAt: string;
  action: string;
  resourceType: string;
  resourceId: string;
  resourceName: string;
  actorKind: string | null;
  actorId: string | null;
  actorName: string | null;
  actorEmail: string | null;
  requestId: string | null;
  ip: string | null;
  userAgent: string | null;
  /** The changes, parsed (`parseJson` keeps each number's text). */
  changes: JsonValue;
}

/** PostgreSQL's quote_nullable: NULL, or quote_literal (quotes and backslashes doubled; E'' when a backslash occurs). */
export function quoteNullable(value: string | null): string {
  if (value === null) return 'NULL';
  const quoted = `'${value.replace(/['\\]/g, (c) => c + c)}'`;
  return value.includes('\\') ? `E${quoted}` : quoted;
}

/** to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') from an ISO instant. */
export function chainTime(iso: string): string {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$/.exec(iso);
  if (!match) throw new Error(`occurredAt ${JSON.stringify(iso)} is not an ISO-8601 UTC instant`);
  return `${match[1]}.${(match[2] ?? '').padEnd(6, '0')}`;
}

export function chainHash(entry: ChainedEntryFields): string {
  const changes = jsonbText(entry.changes);
  const parts = [
    quoteNullable(entry.prevHash),
    String(entry.seq),
    entry.id,
    entry.workspaceId,
    chainTime(entry.occurredAt),
    quoteNullable(entry.action),
    quoteNullable(entry.resourceType),
    entry.resourceId,
    quoteNullable(entry.resourceName),
    quoteNullable(entry.actorId),
    quoteNullable(entry.actorName),
    quoteNullable(entry.actorEmail),
    quoteNullable(entry.requestId),
    quoteNullable(entry.ip),
    quoteNullable(entry.userAgent),
    quoteNullable(changes),
  ];
  if (entry.actorKind !== null) parts.push(entry.actorKind);
  return createHash('sha256').update(parts.join('|'), 'utf8').digest('hex');
}

/**
 * A parsed JSON value that keeps each number's text: jsonb keeps numbers as `numeric`, which
 * JavaScript numbers cannot always hold (1.50, 12345678901234567890).
 */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [key: string]: JsonValue };
export class JsonNumber {
  constructor(readonly text: string) {}
}

/** JSON.parse, except that numbers stay JsonNumber (their text). Throws on invalid JSON. */
export function parseJson(text: string): JsonValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`invalid JSON at character ${i}: ${what}`);
  };
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const value = (): JsonValue => {
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      const object: { [key: string]: JsonValue } = {};
      space();
      if (text[i] === '}') return (i++, object);
      for (;;) {
        space();
        if (text[i] !== '"') fail('expected a key');
        const key = string();
        space();
        if (text[i++] !== ':') fail('expected :');
        Object.defineProperty(object, key, { value: value(), enumerable: true, writable: true, configurable: true });
        space();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return (i++, object);
        else fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const array: JsonValue[] = [];
      space();
      if (text[i] === ']') return (i++, array);
      for (;;) {
        array.push(value());
        space();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return (i++, array);
        else fail('expected , or ]');
      }
    }
    if (c === '"') return string();
    for (const [word, result] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i)) return ((i += word.length), result);
    }
    const number = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 10_000));
    if (!number) fail('unexpected character');
    i += number![0].length;
    return new JsonNumber(number![0]);
  };
  const string = (): string => {
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    return JSON.parse(text.slice(start, ++i)) as string;
  };
  const result = value();
  space();
  if (i !== text.length) fail('trailing characters');
  return result;
}

/** A JSON number as PostgreSQL's numeric prints it: no exponent, the input's scale, no -0. */
export function numericText(text: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!match) throw new Error(`${text} is not a number`);
  const [, sign, whole, fraction = '', exponentText = '0'] = match;
  const exponent = Number(exponentText);
  const digits = whole + fraction;
  const point = whole.length + exponent;
  const scale = Math.max(0, fraction.length - exponent);
  let integer = point <= 0 ? '0' : digits.slice(0, point).padEnd(point, '0');
  let decimals = point < 0 ? '0'.repeat(-point) + digits : digits.slice(Math.max(point, 0));
  decimals = decimals.padEnd(scale, '0').slice(0, scale);
  integer = integer.replace(/^0+(?=\d)/, '');
  const zero = /^0*$/.test(integer + decimals);
  return `${zero ? '' : sign}${integer}${scale > 0 ? `.${decimals}` : ''}`;
}

/** A string as jsonb prints it (PostgreSQL's escape_json). */
function jsonbString(value: string): string {
  let out = '"';
  for (const c of value) {
    const code = c.charCodeAt(0);
    if (c === '"') out += '\\"';
    else if (c === '\\') out += '\\\\';
    else if (c === '\b') out += '\\b';
    else if (c === '\f') out += '\\f';
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else if (code < 0x20) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += c;
  }
  return `${out}"`;
}

/** jsonb orders an object's keys by their length in bytes, then bytewise. */
function jsonbKeyOrder(a: string, b: string): number {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length - y.length || Buffer.compare(x, y);
}

/** `value::jsonb::text`: what PostgreSQL prints for a jsonb value, byte for byte. */
export function jsonbText(value: JsonValue | number): string {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') return numericText(JSON.stringify(value));
  if (value instanceof JsonNumber) return numericText(value.text);
  if (typeof value === 'string') return jsonbString(value);
  if (Array.isArray(value)) return `[${value.map(jsonbText).join(', ')}]`;
  const keys = Object.keys(value).sort(jsonbKeyOrder);
  return `{${keys.map((k) => `${jsonbString(k)}: ${jsonbText(value[k])}`).join(', ')}}`;
}
