import { TransactionHost } from '@nestjs-cls/transactional';
import { ClsServiceManager } from 'nestjs-cls';
import { AsyncLocalStorage } from 'node:async_hooks';
import { v7 as uuidv7 } from 'uuid';
import { Prisma } from '../../generated/prisma/client';
import type { AppClsStore } from '../../request-context/app-cls-store';
import {
  ACTOR_FIELDS,
  AUDITED_BY_MODEL,
  type AuditAction,
  type AuditedResource,
  IGNORED_FIELDS,
} from './audited-resources';
import { diffRows } from './diff';

/** Thrown when a write would escape the audit log; its message says how to write it instead. */
export class AuditCaptureError extends Error {
  override name = 'AuditCaptureError';
}

export interface AuditCaptureOptions {
  /**
   * Refuse audited writes made with no actor in the request context. On in development and test, so
   * that a forgotten context fails loudly; in production such writes are recorded as system actions.
   */
  requireContext: boolean;
}

/** The slice of Prisma's runtime data model that the capture reads. */
export interface RuntimeDataModel {
  models: Record<
    string,
    { dbName: string | null; fields: { name: string; kind: string; type: string; dbName?: string | null }[] }
  >;
}

type Row = Record<string, unknown> & { id: string; workspaceId: string; name: string };
type Args = Record<string, unknown>;
type Delegate = Record<string, (args: Args) => Promise<unknown>>;
type TxClient = Record<string, unknown> & {
  $queryRawUnsafe: (sql: string, ...params: unknown[]) => Promise<Record<string, unknown>[]>;
  $executeRawUnsafe: (sql: string, ...params: unknown[]) => Promise<number>;
};

/** The write operations: captured on audited models, checked for nested writes on every model. */
const AUDITED_OPERATIONS = new Set([
  'create',
  'createMany',
  'createManyAndReturn',
  'update',
  'updateMany',
  'updateManyAndReturn',
  'upsert',
  'delete',
  'deleteMany',
]);
const SHAPE_KEYS = ['select', 'include', 'omit'] as const;

/**
 * Inserts every entry of a write in one statement (`audit_log_append`, hand-written SQL), creating
 * the month's partition first if the service has not created it ahead.
 */
const INSERT_ENTRIES = `SELECT "audit_log_append"($1::jsonb)`;

/** Prisma's private marker on an interactive-transaction client: which transaction it belongs to. */
const TX_SCOPE = Symbol.for('prisma.client.transaction.scope_context');

/** Writes issued by the capture itself; they are the audited write, so they must not be captured again. */
const ownWrite = new AsyncLocalStorage<true>();

interface ModelInfo {
  resource: AuditedResource | undefined;
  table: string;
  /** Scalar field name → column name. */
  columns: Map<string, string>;
  scalarFields: string[];
  diffFields: string[];
  /** Relation field name → related model name. */
  relations: Map<string, string>;
}

function describeModels(dataModel: RuntimeDataModel): Map<string, ModelInfo> {
  const info = new Map<string, ModelInfo>();
  for (const [name, model] of Object.entries(dataModel.models)) {
    const scalars = model.fields.filter((f) => f.kind !== 'object');
    info.set(name, {
      resource: AUDITED_BY_MODEL.get(name),
      table: model.dbName ?? name,
      columns: new Map(scalars.map((f) => [f.name, f.dbName ?? f.name])),
      scalarFields: scalars.map((f) => f.name),
      diffFields: scalars.map((f) => f.name).filter((f) => !IGNORED_FIELDS.has(f)),
      relations: new Map(model.fields.filter((f) => f.kind === 'object').map((f) => [f.name, f.type])),
    });
  }
  return info;
}

function isPlainObject(value: unknown): value is Args {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function hasShape(args: Args): boolean {
  return SHAPE_KEYS.some((key) => args[key] !== undefined);
}

function shapeOf(args: Args): Args {
  const shape: Args = {};
  for (const key of SHAPE_KEYS) if (args[key] !== undefined) shape[key] = args[key];
  return shape;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && sameValue(a[k], b[k]));
  }
  return a === b;
}

export function auditCapture(dataModel: RuntimeDataModel, options: AuditCaptureOptions) {
  const models = describeModels(dataModel);

  const modelInfo = (model: string): ModelInfo => {
    const info = models.get(model);
    if (!info) throw new AuditCaptureError(`Unknown Prisma model ${model}.`);
    return info;
  };

  /** Refuses nested writes that reach an audited model: they never pass through this extension. */
  const refuseNestedAuditedWrites = (model: string, data: unknown, path: string): void => {
    const rows = Array.isArray(data) ? data : [data];
    const info = modelInfo(model);
    for (const row of rows) {
      if (!isPlainObject(row)) continue;
      for (const [field, value] of Object.entries(row)) {
        const target = info.relations.get(field);
        if (!target || value === undefined) continue;
        const targetInfo = modelInfo(target);
        if (info.resource || targetInfo.resource) {
          throw new AuditCaptureError(
            `Nested write ${path}.${field} on ${model} is not audited. ` +
              `Set the foreign key scalar (for example ${model}.${field}Id) or write ${target} with its own ` +
              `top-level call inside the same transaction.`,
          );
        }
        if (isPlainObject(value)) {
          for (const nested of Object.values(value)) {
            refuseNestedAuditedWrites(target, nested, `${path}.${field}`);
          }
        }
      }
    }
  };

  /** Plain values of an audited write's data; operators other than `set` are refused. */
  const plainData = (info: ModelInfo, data: unknown, operation: string): Args => {
    if (!isPlainObject(data))
      throw new AuditCaptureError(`${operation} on ${info.resource!.model} needs a data object.`);
    const plain: Args = {};
    for (const [field, value] of Object.entries(data)) {
      if (value === undefined) continue;
      if (ACTOR_FIELDS.has(field)) {
        throw new AuditCaptureError(
          `${info.resource!.model}.${field} is set by the audit capture from the request's actor; do not pass it.`,
        );
      }
      const jsonField = dataModel.models[info.resource!.model].fields.find((f) => f.name === field)?.type === 'Json';
      if (isPlainObject(value) && !jsonField) {
        const keys = Object.keys(value);
        if (keys.length === 1 && keys[0] === 'set') {
          plain[field] = value.set;
          continue;
        }
        throw new AuditCaptureError(
          `${info.resource!.model}.${field} uses the operator ${keys.join(', ')}, which the audit capture cannot ` +
            `diff before it runs. Read the row and write the new value instead.`,
        );
      }
      plain[field] = value;
    }
    return plain;
  };

  return Prisma.defineExtension({
    name: 'audit-capture',
    query: {
      $allModels: {
        async $allOperations(params) {
          const { model, operation, args, query } = params;
          if (!AUDITED_OPERATIONS.has(operation) || ownWrite.getStore()) return query(args);
          const writeArgs = args as Args;
          for (const key of ['data', 'create', 'update'] as const) {
            if (writeArgs[key] !== undefined) refuseNestedAuditedWrites(model, writeArgs[key], key);
          }
          const info = modelInfo(model);
          if (!info.resource) return query(args);

          const transaction = (params as { __internalParams?: { transaction?: { kind?: string; id?: string } } })
            .__internalParams?.transaction;
          if (transaction?.kind === 'batch') {
            throw new AuditCaptureError(
              `${model}.${operation} inside a batch $transaction([...]) cannot be audited in the same transaction. ` +
                `Use @Transactional() or TransactionHost.withTransaction() instead.`,
            );
          }
          const host = TransactionHost.getInstance();
          if (transaction?.kind === 'itx') {
            const scope = host.isTransactionActive()
              ? (host.tx as Record<symbol, { txId?: string } | undefined>)[TX_SCOPE]
              : undefined;
            if (scope?.txId !== transaction.id) {
              throw new AuditCaptureError(
                `${model}.${operation} runs in a transaction opened with prisma.$transaction(async (tx) => …), which ` +
                  `the audit capture cannot join. Open it with @Transactional() or TransactionHost.withTransaction().`,
              );
            }
            return capture(host.tx, info, operation, writeArgs);
          }
          // Not in a transaction: open one (or join the context's) and re-issue the call on its client.
          return host.withTransaction(() => {
            const delegate = (host.tx as unknown as Record<string, Delegate>)[info.resource!.delegate];
            return delegate[operation](writeArgs).then((result) => result);
          });
        },
      },
    },
  });

  async function capture(tx: TxClient, info: ModelInfo, operation: string, args: Args): Promise<unknown> {
    const resource = info.resource!;
    const delegate = tx[resource.delegate] as Delegate;
    // `.then` starts the lazy PrismaPromise inside the ALS scope, where the extension sees the marker.
    const write = <T>(method: string, writeArgs: Args): Promise<T> =>
      ownWrite.run(true, () => delegate[method](writeArgs).then((result) => result as T));
    const actor = currentActor(resource.model);
    const actorId = actor.user?.id ?? null;

    const record = async (entries: { action: AuditAction; before?: Row; after?: Row }[]): Promise<void> => {
      const occurredAt = new Date().toISOString();
      const rows = entries.flatMap(({ action, before, after }) => {
        const changes = diffRows(before, after, info.diffFields, resource.secretFields);
        if (action === 'updated' && changes.length === 0) return [];
        const row = (after ?? before)!;
        return [
          {
            id: uuidv7(),
            workspace_id: row.workspaceId,
            occurred_at: occurredAt,
            action,
            resource_type: resource.type,
            resource_id: row.id,
            resource_name: row.name,
            actor_id: actorId,
            actor_name: actor.user?.name ?? null,
            actor_email: actor.user?.email ?? null,
            request_id: actor.requestId,
            ip: actor.ip,
            user_agent: actor.userAgent,
            changes,
          },
        ];
      });
      // One statement and one parameter for any number of entries: Prisma's createMany binds 14
      // parameters per row and takes most of a second for a thousand rows.
      if (rows.length > 0) await tx.$queryRawUnsafe(INSERT_ENTRIES, JSON.stringify(rows));
    };

    /**
     * Locks the rows `where` selects and returns their current state, in one statement when `where`
     * is a bare id. `unique` marks a unique-input where (update, upsert, delete), which only the
     * findUnique family accepts.
     */
    const lockRows = async (where: unknown, { unique, take }: { unique: boolean; take?: number }): Promise<Row[]> => {
      const byIdOnly = isPlainObject(where) && Object.keys(where).length === 1 && typeof where.id === 'string';
      const matchingIds = async (): Promise<string[]> => {
        if (unique) {
          const row = (await delegate.findUnique({ where, select: { id: true } })) as { id: string } | null;
          return row ? [row.id] : [];
        }
        const rows = (await delegate.findMany({
          where,
          select: { id: true },
          ...(take === undefined ? {} : { take }),
        })) as {
          id: string;
        }[];
        return rows.map((r) => r.id);
      };
      const ids = byIdOnly && take === undefined ? [where.id as string] : await matchingIds();
      if (ids.length === 0) return [];
      const columns = info.scalarFields.map((f) => `"${info.columns.get(f)}" AS "${f}"`).join(', ');
      const locked = (await tx.$queryRawUnsafe(
        `SELECT ${columns} FROM "${info.table}" WHERE "id" = ANY($1::uuid[]) ORDER BY "id" FOR UPDATE`,
        ids,
      )) as Row[];
      if (byIdOnly || locked.length === 0) return locked;
      // A row may have stopped matching `where` between reading its id and locking it.
      const still = new Set(await matchingIds());
      return locked.filter((row) => still.has(row.id));
    };

    const changesSomething = (row: Row, data: Args): boolean =>
      Object.entries(data).some(([field, value]) => !sameValue(row[field], value));

    /** Returns what the caller asked for: the full row, or the rows re-read with its select/include/omit. */
    const reshape = async (rows: Row[], originalArgs: Args): Promise<unknown[]> => {
      if (!hasShape(originalArgs) || rows.length === 0) return rows;
      const shape = shapeOf(originalArgs);
      const select = isPlainObject(shape.select) ? shape.select : undefined;
      const omit = isPlainObject(shape.omit) ? shape.omit : undefined;
      const dropId = (select !== undefined && !select.id) || omit?.id === true;
      const shaped = (await delegate.findMany({
        where: { id: { in: rows.map((r) => r.id) } },
        ...shape,
        ...(select ? { select: { ...select, id: true } } : {}),
        ...(omit ? { omit: { ...omit, id: false } } : {}),
      })) as Row[];
      const byId = new Map(shaped.map((row) => [row.id, row]));
      return rows.map((row) => {
        const found = { ...byId.get(row.id) };
        if (dropId) delete (found as Args).id;
        return found;
      });
    };

    const create = async (data: unknown, originalArgs: Args): Promise<unknown> => {
      const row = await write<Row>('create', {
        data: { ...plainData(info, data, operation), createdById: actorId, updatedById: actorId },
      });
      await record([{ action: 'created', after: row }]);
      return (await reshape([row], originalArgs))[0];
    };

    const updateOne = async (before: Row, data: unknown, originalArgs: Args): Promise<unknown> => {
      const patch = plainData(info, data, operation);
      if (!changesSomething(before, patch)) return (await reshape([before], originalArgs))[0];
      const after = await write<Row>('update', { where: { id: before.id }, data: { ...patch, updatedById: actorId } });
      await record([{ action: 'updated', before, after }]);
      return (await reshape([after], originalArgs))[0];
    };

    switch (operation) {
      case 'create':
        return create(args.data, args);

      case 'createMany':
      case 'createManyAndReturn': {
        const list = Array.isArray(args.data) ? args.data : [args.data];
        const data = list.map((item) => ({
          ...plainData(info, item, operation),
          createdById: actorId,
          updatedById: actorId,
        }));
        const rows = await write<Row[]>('createManyAndReturn', {
          data,
          ...(args.skipDuplicates === undefined ? {} : { skipDuplicates: args.skipDuplicates }),
        });
        await record(rows.map((after) => ({ action: 'created' as const, after })));
        return operation === 'createMany' ? { count: rows.length } : reshape(rows, args);
      }

      case 'update': {
        const [before] = await lockRows(args.where, { unique: true });
        if (!before) return write('update', args); // Prisma raises its own "record not found".
        return updateOne(before, args.data, args);
      }

      case 'upsert': {
        const [before] = await lockRows(args.where, { unique: true });
        return before ? updateOne(before, args.update, args) : create(args.create, args);
      }

      case 'updateMany':
      case 'updateManyAndReturn': {
        const patch = plainData(info, args.data, operation);
        const take = typeof args.limit === 'number' ? args.limit : undefined;
        const before = (await lockRows(args.where ?? {}, { unique: false, take })).filter((row) =>
          changesSomething(row, patch),
        );
        const after =
          before.length === 0
            ? []
            : await write<Row[]>('updateManyAndReturn', {
                where: { id: { in: before.map((r) => r.id) } },
                data: { ...patch, updatedById: actorId },
              });
        const beforeById = new Map(before.map((row) => [row.id, row]));
        await record(after.map((row) => ({ action: 'updated' as const, before: beforeById.get(row.id), after: row })));
        return operation === 'updateMany' ? { count: after.length } : reshape(after, args);
      }

      case 'delete': {
        const [before] = await lockRows(args.where, { unique: true });
        if (!before) return write('delete', args);
        const result = await write('delete', { ...args, where: { id: before.id } });
        await record([{ action: 'deleted', before }]);
        return result;
      }

      case 'deleteMany': {
        const take = typeof args.limit === 'number' ? args.limit : undefined;
        const before = await lockRows(args.where ?? {}, { unique: false, take });
        if (before.length === 0) return { count: 0 };
        const result = await write<{ count: number }>('deleteMany', { where: { id: { in: before.map((r) => r.id) } } });
        await record(before.map((row) => ({ action: 'deleted' as const, before: row })));
        return result;
      }

      default:
        throw new AuditCaptureError(`The audit capture does not handle ${resource.model}.${operation}.`);
    }
  }

  function currentActor(model: string): {
    user: { id: string; name: string; email: string } | null;
    requestId: string | null;
    ip: string | null;
    userAgent: string | null;
  } {
    const cls = ClsServiceManager.getClsService<AppClsStore>();
    const actor = cls.isActive() ? cls.get('actor') : undefined;
    if (!actor && options.requireContext) {
      throw new AuditCaptureError(
        `Audited write to ${model} with no actor in the request context. Requests get one from the AuthGuard; ` +
          `scripts, seeds and jobs must wrap their work in runAsSystem('job-name', fn) from src/request-context.`,
      );
    }
    return {
      user: actor?.kind === 'user' ? { id: actor.id, name: actor.name, email: actor.email } : null,
      requestId: (cls.isActive() ? cls.get('requestId') : undefined) ?? null,
      ip: (cls.isActive() ? cls.get('ip') : undefined) ?? null,
      userAgent: (cls.isActive() ? cls.get('userAgent') : undefined) ?? null,
    };
  }
}
