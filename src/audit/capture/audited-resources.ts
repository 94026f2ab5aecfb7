/**
 * The one place that says what is audited: which tables, as which resource type, which of their
 * JSON fields may hold secrets, and what a secret looks like. The database's capture triggers are
 * configured from this registry (`attachAuditTriggers`, run after every migration), and the API
 * masks secrets in responses with the same rule, so the two cannot disagree.
 *
 * Adding an audited table: its Prisma model, a migration that creates it, and a row in
 * AUDITED_RESOURCES (plus its type in AUDITED_TYPES when the type is new). A table shaped like a
 * resource (`id`, `workspace_id`, `name`, `created_at`, `updated_at`, `created_by_id`,
 * `updated_by_id`) needs no capture knobs; any other says through `capture` how its rows map to
 * entries.
 */

/** The workspace's resources: managed by the resource routes, listed for auditors, restorable. */
export const RESOURCE_TYPES = ['source', 'model', 'segment', 'destination'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

/** Every resource type an entry may have: the resources, and who can do what, and the log's own reads. */
export const AUDITED_TYPES = [...RESOURCE_TYPES, 'member', 'api_token', 'workspace', 'audit_log'] as const;
export type AuditedType = (typeof AUDITED_TYPES)[number];

export const AUDIT_ACTIONS = ['created', 'updated', 'deleted', 'restored', 'exported', 'verified'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export const ACTOR_KINDS = ['user', 'system', 'database'] as const;
export type ActorKind = (typeof ACTOR_KINDS)[number];

export interface AuditedTypeInfo {
  /** Used in action names: "Segment updated". */
  label: string;
  /** Action names that read better than `<label> <action>`: "Member added". */
  actionNames?: Partial<Record<AuditAction, string>>;
  /**
   * Names for an action whose changes touch a field (the field itself, or a path under it), checked
   * in order before `actionNames`: "Retention changed" for a workspace update of its retention.
   */
  fieldActionNames?: readonly { action: AuditAction; field: string; name: string }[];
}

export const AUDITED_TYPE_INFO: Readonly<Record<AuditedType, AuditedTypeInfo>> = {
  source: { label: 'Source' },
  model: { label: 'Model' },
  segment: { label: 'Segment' },
  destination: { label: 'Destination' },
  member: {
    label: 'Member',
    actionNames: { created: 'Member added', updated: 'Member details changed', deleted: 'Member removed' },
    fieldActionNames: [{ action: 'updated', field: 'role', name: 'Member role changed' }],
  },
  api_token: { label: 'API token', actionNames: { deleted: 'API token revoked' } },
  workspace: {
    label: 'Workspace',
    fieldActionNames: [
      { action: 'updated', field: 'auditRetentionMonths', name: 'Retention changed' },
      { action: 'created', field: 'streams', name: 'Log stream added' },
      { action: 'deleted', field: 'streams', name: 'Log stream deleted' },
    ],
  },
  audit_log: { label: 'Audit log' },
};

/**
 * How a table that is not shaped like a resource maps to entries. Every value is a fixed SQL
 * expression over the new row `r` (and, in `updateAction`, the old row `o`), written here by the
 * project's developers and compiled into the table's capture function: never user input.
 */
export interface CaptureKnobs {
  /** The entry's workspace; default `r."workspace_id"`. */
  workspace?: string;
  /** A subquery yielding `"workspace_id"`: one entry per workspace it returns (fan-out). */
  workspaces?: string;
  /** Default `r."id"`. */
  resourceId?: string;
  /** The name shown at the time of the action; default `r."name"`. */
  resourceName?: string;
  /** Text put before every field name: fields become `<prefix>.<field>`. */
  fieldPrefix?: string;
  /** Columns never audited: a change of only these writes no entry. */
  ignoredColumns?: readonly string[];
  /** Fields shown in a creation's and a deletion's changes though not columns: `{ email: '(SELECT …)' }`. */
  contextFields?: Readonly<Record<string, string>>;
  /** A creation lists only the fields that hold a value. */
  omitNullCreated?: boolean;
  /** The action of an insert; default `'created'`. */
  insertAction?: string;
  /** The action of an update; default `'updated'`. */
  updateAction?: string;
  /**
   * false: the table has no creator/editor columns (`created_by_id`, `updated_by_id`, `updated_at`);
   * the columns of `fixedColumns` (default `id`) then cannot change.
   */
  stamped?: boolean;
  fixedColumns?: readonly string[];
}

export interface AuditedResource {
  /** Prisma model name. */
  model: string;
  /** The table the capture triggers are attached to. */
  table: string;
  type: AuditedType;
  /** JSON fields (API names) in which SECRET_KEY applies, at any depth. */
  secretFields: readonly string[];
  capture?: CaptureKnobs;
}

const USER_OF_ROW = (column: string) => `(SELECT u."${column}" FROM "users" u WHERE u."id" = r."user_id")`;

export const AUDITED_RESOURCES: readonly AuditedResource[] = [
  { model: 'Source', table: 'sources', type: 'source', secretFields: ['config'] },
  { model: 'SqlModel', table: 'models', type: 'model', secretFields: [] },
  { model: 'Segment', table: 'segments', type: 'segment', secretFields: [] },
  { model: 'Destination', table: 'destinations', type: 'destination', secretFields: ['config'] },
  {
    // A member's resource id is the user's id, so that a member's history (added, role changed,
    // removed, added again) is one resource's history in the workspace.
    model: 'Membership',
    table: 'memberships',
    type: 'member',
    secretFields: [],
    capture: {
      stamped: false,
      fixedColumns: ['id', 'workspace_id', 'user_id'],
      resourceId: 'r."user_id"',
      resourceName: USER_OF_ROW('name'),
      contextFields: { email: USER_OF_ROW('email') },
    },
  },
  {
    // A user's name or email is part of who a member is: a change of either is recorded as the
    // member's change in every workspace the user belongs to (a user in none has no log to show it in).
    model: 'User',
    table: 'users',
    type: 'member',
    secretFields: [],
    capture: {
      stamped: false,
      fixedColumns: ['id'],
      workspaces: 'SELECT m."workspace_id" FROM "memberships" m WHERE m."user_id" = r."id"',
      ignoredColumns: ['created_at'],
    },
  },
  {
    // Recorded in every workspace the token's user belongs to, named by its label; its hash and its
    // last use are never recorded. Revoking sets revoked_at: recorded as `deleted`.
    model: 'ApiToken',
    table: 'api_tokens',
    type: 'api_token',
    secretFields: [],
    capture: {
      stamped: false,
      fixedColumns: ['id', 'user_id', 'token_hash'],
      workspaces: 'SELECT m."workspace_id" FROM "memberships" m WHERE m."user_id" = r."user_id"',
      resourceName: 'r."label"',
      ignoredColumns: ['token_hash', 'last_used_at'],
      omitNullCreated: true,
      updateAction: `CASE WHEN o."revoked_at" IS NULL AND r."revoked_at" IS NOT NULL THEN 'deleted' ELSE 'updated' END`,
    },
  },
  {
    model: 'Workspace',
    table: 'workspaces',
    type: 'workspace',
    secretFields: [],
    capture: { stamped: false, workspace: 'r."id"' },
  },
  {
    // A log stream is a setting of its workspace: its creation and deletion are the workspace's
    // entries, its fields under streams["<id>"]. The secret (encrypted) never enters the log: a
    // creation and a deletion show it as "[REDACTED]". The deliverer's state lives in
    // audit_stream_deliveries, which is not audited.
    model: 'AuditStream',
    table: 'audit_streams',
    type: 'workspace',
    secretFields: [],
    capture: {
      resourceId: 'r."workspace_id"',
      resourceName: '(SELECT w."name" FROM "workspaces" w WHERE w."id" = r."workspace_id")',
      fieldPrefix: `'streams["' || r."id" || '"]'`,
      ignoredColumns: ['secret'],
      contextFields: { secret: `'[REDACTED]'::text` },
    },
  },
  {
    // One row per export or verification of the log, appended by the application (which may only
    // insert there): the entry's action is the row's, its resource is the workspace's log.
    model: 'AuditLogRead',
    table: 'audit_log_reads',
    type: 'audit_log',
    secretFields: [],
    capture: {
      stamped: false,
      resourceId: 'r."workspace_id"',
      resourceName: `'Audit log'`,
      ignoredColumns: ['action'],
      omitNullCreated: true,
      insertAction: 'r."action"',
    },
  },
];

export const AUDITED_BY_MODEL: ReadonlyMap<string, AuditedResource> = new Map(
  AUDITED_RESOURCES.map((resource) => [resource.model, resource]),
);

/** The registry's rows of the workspace's resources (the four restorable types). */
export const RESOURCE_TABLES: readonly AuditedResource[] = AUDITED_RESOURCES.filter((r) =>
  (RESOURCE_TYPES as readonly string[]).includes(r.type),
);

/**
 * A key whose value is a secret (inside a secret field), and the label that marks a sibling `value`,
 * the second item of a pair or the value of a named parameter in text as one, in any casing. Only
 * syntax that JavaScript and PostgreSQL's POSIX regexes read alike: the database evaluates the same text.
 */
export const SECRET_KEY =
  /pass|pwd|secret|token|key|credential|private|auth|dsn|cookie|session|signature|jwt|(^|[^A-Za-z])sig([^A-Za-z]|$)/i;

/**
 * The key of a header-list item's value, in any casing, which holds a secret beside another member
 * that matches SECRET_KEY (`{ name: "Authorization", value }`, `{ key: "Authorization", val }`,
 * `{ k: "X-Api-Key", v }`, `{ name: "Cookie", content }`). The database's `audit_leaves` uses the
 * same regex.
 */
export const VALUE_KEY = /^(value|val|v|content)$/i;

/**
 * A URL with credentials anywhere in a text (`postgres://user:pw@host`, `jdbc:postgresql://…`,
 * `//user:pw@host`, a user that is an e-mail address, a password holding `@`): group 1 is everything
 * from the `//` up to the password, group 2 the password, which runs to the last `@` before the host.
 * Also evaluated by PostgreSQL as a POSIX regex, on every match.
 */
export const URL_PASSWORD = /(\/\/[^/?#:]*:)([^/?#]*)@/;

/**
 * The body of a PEM private key anywhere in a text: group 1 is its `-----BEGIN … PRIVATE KEY …-----`
 * line, group 2 the body, up to `-----END` (group 3) or, for a key cut short, the end of the text.
 * The line's words are one run of `[A-Z0-9 ]` that a lookahead checks for `PRIVATE KEY`: written
 * as `[A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*`, JavaScript tried every `PRIVATE KEY` in the run against the
 * rest of it, quadratic in its length. Also evaluated by PostgreSQL as a POSIX regex, on every match.
 */
export const PEM_PRIVATE_KEY =
  /(-----BEGIN (?=[A-Z0-9 ]*PRIVATE KEY)[A-Z0-9 ]*-----)((?:[^-]|-(?!----END))*)(-----END|$)/;

/**
 * A named parameter in a text: at the start or after `?`, `&`, `;`, `#` or white space, a name (group
 * 2) and `=` or `:` (group 3). A `:` separates a name from its value only before a space or a tab,
 * after a quoted name (`Authorization: Bearer …`, `"token": …`) or after a name matching SECRET_KEY
 * (`Authorization:Bearer …`, `X-Api-Key:…`), not in `host:5432`. The value of a
 * name matching SECRET_KEY is a secret up to the next parameter, or to the end of the text:
 * `?api_key=…&x=1`, `;Password=…;`, `password=… dbname=app`; after a `:` (a header line:
 * `Cookie: sid=…; theme=dark`), up to the end of its line. The database scans with the same
 * regex (`audit_redact_text`).
 */
export const TEXT_PARAMETER = /(^|[?&;#\t\n\r ])([^=:?&;#\t\n\r ]+)([=:])/;

function touches(changes: readonly { field: string }[], field: string): boolean {
  return changes.some((c) => c.field === field || c.field.startsWith(`${field}.`) || c.field.startsWith(`${field}[`));
}

/** What the log's table shows for an entry: "Segment updated", "Member added", "Retention changed". */
export function actionName(type: AuditedType, action: AuditAction, changes: readonly { field: string }[] = []): string {
  const info = AUDITED_TYPE_INFO[type] as AuditedTypeInfo | undefined;
  const byField = info?.fieldActionNames?.find((rule) => rule.action === action && touches(changes, rule.field));
  return byField?.name ?? info?.actionNames?.[action] ?? `${info?.label ?? type} ${action}`;
}

/**
 * `actionName` as a SQL expression over a row of `audit_logs` (its "resource_type", "action" and
 * "changes"), for the export, which PostgreSQL renders line by line.
 */
export function actionNameSql(): string {
  const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
  // One CASE on the type, then that type's rules only: the export evaluates this once per line, and
  // most lines are of the resource types, which have no rules.
  const types = AUDITED_TYPES.map((type) => {
    const info: AuditedTypeInfo = AUDITED_TYPE_INFO[type];
    const whens = [
      ...(info.fieldActionNames ?? []).map(
        (rule) =>
          `WHEN "action" = ${literal(rule.action)} AND EXISTS (SELECT 1 FROM jsonb_array_elements("changes") c ` +
          `WHERE c->>'field' = ${literal(rule.field)} OR left(c->>'field', ${rule.field.length + 1}) ` +
          `IN (${literal(`${rule.field}.`)}, ${literal(`${rule.field}[`)})) THEN ${literal(rule.name)}`,
      ),
      ...Object.entries(info.actionNames ?? {}).map(
        ([action, name]) => `WHEN "action" = ${literal(action)} THEN ${literal(name)}`,
      ),
    ];
    const byLabel = `${literal(`${info.label} `)} || "action"`;
    return `WHEN ${literal(type)} THEN ${whens.length ? `(CASE ${whens.join(' ')} ELSE ${byLabel} END)` : byLabel}`;
  });
  return `(CASE "resource_type" ${types.join(' ')} ELSE "resource_type" || ' ' || "action" END)`;
}
