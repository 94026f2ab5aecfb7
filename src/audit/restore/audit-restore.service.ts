import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterPrisma } from '@nestjs-cls/transactional-adapter-prisma';
import { ConflictException, Inject, Injectable } from '@nestjs/common';
import type { AppPrismaClient } from '../../database/prisma-client.factory';
import { Prisma } from '../../generated/prisma/client';
import { runAsRestore } from '../../request-context/run-with-actor';
import type { ResourceDelegate } from '../../resources/resource-kinds';
import { DESTINATIONS, MODELS, SEGMENTS, SOURCES } from '../../resources/resources.module';
import type { ResourceResponse, ResourcesService } from '../../resources/resources.service';
import { REDACTED, textSecrets } from '../../resources/secrets';
import { AUDITED_RESOURCES } from '../capture/audited-resources';
import type { AuditEntry, FieldChange } from '../query/audit-entry';
import { AuditLogsService } from '../query/audit-logs.service';
import { compact, deleteAt, type JsonValue, overlaps, parsePath, type PathSegment, setAt } from './change-path';

export type RestoreResult = ResourceResponse & { secretsNotRestored: string[] };

interface Delegate {
  findFirst(args: object): Promise<(Record<string, unknown> & { id: string; name: string }) | null>;
  findMany(args: object): Promise<{ id: string }[]>;
  create(args: object): Promise<unknown>;
  update(args: object): Promise<unknown>;
}

interface Leaf extends FieldChange {
  path: PathSegment[];
}

/** A value the log could not keep: a redacted secret, or a text (a URL, a connection string) with a secret redacted. */
function isRedacted(value: unknown): boolean {
  return (
    value === REDACTED || (typeof value === 'string' && textSecrets(value).some((secret) => secret.value === REDACTED))
  );
}

const hasBefore = (change: FieldChange) => Object.hasOwn(change, 'before');

/**
 * Undoes one audit entry as a new change: an update's fields go back to their `before` values, a
 * deleted resource is re-created with its id and its state before the deletion. The writes run in one
 * transaction marked as a restore, so that the database's capture records them as `restored`, with the
 * diff of what the restore changed. Every refusal is a 409 raised before the first write.
 */
@Injectable()
export class AuditRestoreService {
  private readonly services: Map<string, ResourcesService>;

  constructor(
    private readonly auditLogs: AuditLogsService,
    private readonly txHost: TransactionHost<TransactionalAdapterPrisma<AppPrismaClient>>,
    @Inject(SOURCES) sources: ResourcesService,
    @Inject(MODELS) models: ResourcesService,
    @Inject(SEGMENTS) segments: ResourcesService,
    @Inject(DESTINATIONS) destinations: ResourcesService,
  ) {
    this.services = new Map([sources, models, segments, destinations].map((s) => [s.kind.type, s]));
  }

  async restore(workspaceId: string, entryId: string): Promise<RestoreResult> {
    const entry = await this.auditLogs.get(workspaceId, entryId);
    const service = this.services.get(entry.resourceType);
    if (!service) {
      throw new ConflictException(`Entries about a ${entry.resourceType} cannot be restored.`);
    }
    // A restore that put an update's fields back is undone like an update; one that re-created a
    // resource (an insert, whose entry shows the name with no `before`) is undone like a creation.
    const recreation = entry.changes.some((change) => change.field === 'name' && !hasBefore(change));
    const reverts = entry.action === 'updated' || (entry.action === 'restored' && !recreation);
    if (entry.action !== 'deleted' && !reverts) {
      throw new ConflictException(
        `Entry ${entry.id} records the ${entry.action === 'created' ? 'creation' : 're-creation'} of ${entry.resourceType} ` +
          `${JSON.stringify(entry.resourceName)}: that is undone by deleting the resource ` +
          `(DELETE /api/workspaces/${workspaceId}/${entry.resourceType}s/${entry.resourceId}), not by a restore.`,
      );
    }
    const leaves: Leaf[] = entry.changes.map((change) => ({ ...change, path: parsePath(change.field) }));
    return runAsRestore(() =>
      this.txHost.withTransaction(async () => {
        const secretsNotRestored =
          entry.action === 'deleted'
            ? await this.recreate(workspaceId, entry, leaves, service)
            : await this.revert(workspaceId, entry, leaves, service);
        return { ...(await service.get(workspaceId, entry.resourceId)), secretsNotRestored };
      }),
    );
  }

  /** An update's leaves back to their `before` values, on top of the resource's current state. */
  private async revert(workspaceId: string, entry: AuditEntry, leaves: Leaf[], service: ResourcesService) {
    const kind = service.kind;
    const table = AUDITED_RESOURCES.find((r) => r.type === kind.type)!.table;
    // Held until commit: no other write to the resource can slip between the checks and the update.
    const locked = await this.txHost.tx.$queryRaw<{ id: string }[]>`
      SELECT "id" FROM ${Prisma.raw(`"${table}"`)}
      WHERE "id" = ${entry.resourceId}::uuid AND "workspace_id" = ${workspaceId}::uuid FOR UPDATE`;
    if (locked.length === 0) {
      throw new ConflictException(
        `${kind.label} ${entry.resourceId} (${JSON.stringify(entry.resourceName)}) no longer exists, so its fields ` +
          `cannot be restored: restore its deletion first. Nothing was changed.`,
      );
    }
    await this.checkLaterEntries(workspaceId, entry, leaves);
    const current = (await this.delegate(kind.delegate).findFirst({ where: { id: entry.resourceId, workspaceId } }))!;
    const fields = this.fieldsOf(leaves, service);
    const root: { [key: string]: JsonValue } = {};
    for (const field of fields) root[field] = structuredClone(current[field]) as JsonValue;
    const secretsNotRestored: string[] = [];
    // Leaves the update added go first, then every leaf it changed or removed is put back.
    for (const leaf of leaves) if (!hasBefore(leaf)) deleteAt(root, leaf.path);
    for (const leaf of leaves) {
      if (!hasBefore(leaf)) continue;
      if (isRedacted(leaf.before)) secretsNotRestored.push(leaf.field);
      else setAt(root, leaf.path, structuredClone(leaf.before) as JsonValue);
    }
    const data: Record<string, unknown> = {};
    for (const field of fields) data[field] = this.toPrisma(compact(root[field] ?? null), current[field]);
    if (typeof data.name === 'string' && data.name !== current.name) {
      await this.checkName(workspaceId, service, data.name, entry.resourceId);
    }
    await this.checkReferences(workspaceId, service, data);
    // A restore whose every leaf is a secret changes nothing, and the database then records nothing.
    await this.delegate(kind.delegate).update({ where: { id: entry.resourceId }, data });
    return secretsNotRestored;
  }

  /**
   * A deleted resource again, with its id and the state its deletion recorded. The database stamps
   * it with the creator and creation time of its `created` entry; the restorer is its last editor.
   */
  private async recreate(workspaceId: string, entry: AuditEntry, leaves: Leaf[], service: ResourcesService) {
    const kind = service.kind;
    const existing = await this.delegate(kind.delegate).findFirst({
      where: { id: entry.resourceId },
      select: { id: true },
    });
    if (existing) {
      throw new ConflictException(
        `${kind.label} ${entry.resourceId} exists: it was re-created since this deletion. Nothing was changed.`,
      );
    }
    await this.checkLaterEntries(workspaceId, entry, leaves);
    const fields = this.fieldsOf(leaves, service);
    const root: { [key: string]: JsonValue } = {};
    const secretsNotRestored: string[] = [];
    for (const leaf of leaves) {
      if (!hasBefore(leaf)) continue;
      // The log does not hold the secret: the re-created resource goes without it (the key is left out).
      if (isRedacted(leaf.before)) secretsNotRestored.push(leaf.field);
      else setAt(root, leaf.path, structuredClone(leaf.before) as JsonValue);
    }
    const data: Record<string, unknown> = { id: entry.resourceId, workspaceId };
    for (const field of fields) if (root[field] !== undefined) data[field] = this.toPrisma(compact(root[field]));
    if (typeof data.name === 'string') await this.checkName(workspaceId, service, data.name, entry.resourceId);
    await this.checkReferences(workspaceId, service, data);
    await this.delegate(kind.delegate).create({ data });
    return secretsNotRestored;
  }

  /** 409 naming the fields when a later entry of the resource changed any of the same leaves. */
  private async checkLaterEntries(workspaceId: string, entry: AuditEntry, leaves: Leaf[]): Promise<void> {
    const later = await this.txHost.tx.$queryRaw<{ id: string; changes: FieldChange[] }[]>`
      SELECT "id", "changes" FROM "audit_logs"
      WHERE "workspace_id" = ${workspaceId}::uuid AND "resource_id" = ${entry.resourceId}::uuid
        AND ("occurred_at", "id") > (${new Date(entry.occurredAt)}::timestamptz, ${entry.id}::uuid)
      ORDER BY "occurred_at", "id"`;
    const touched = new Set<string>();
    const by = new Set<string>();
    for (const other of later) {
      for (const change of other.changes) {
        const path = parsePath(change.field);
        for (const leaf of leaves) {
          if (overlaps(leaf.path, path)) {
            touched.add(leaf.field);
            by.add(other.id);
          }
        }
      }
    }
    if (touched.size > 0) {
      throw new ConflictException(
        `A later change touched the same fields: ${[...touched].join(', ')} (entries ${[...by].join(', ')}). ` +
          `Restore the later entries first, or edit the resource. Nothing was changed.`,
      );
    }
  }

  /** The resource's own fields among the entry's leaves (bookkeeping columns are never in `changes`). */
  private fieldsOf(leaves: Leaf[], service: ResourcesService): string[] {
    const known = new Set(['name', ...service.kind.fields]);
    const fields = [...new Set(leaves.map((leaf) => leaf.path[0] as string))];
    const unknown = fields.filter((field) => !known.has(field));
    if (unknown.length > 0) {
      throw new ConflictException(
        `This entry changed ${unknown.join(', ')}, which a ${service.kind.type} no longer has. Nothing was changed.`,
      );
    }
    return fields;
  }

  private async checkName(workspaceId: string, service: ResourcesService, name: string, id: string): Promise<void> {
    const clash = await this.delegate(service.kind.delegate).findFirst({
      where: { workspaceId, name, id: { not: id } },
      select: { id: true },
    });
    if (clash) {
      throw new ConflictException(
        `The name ${JSON.stringify(name)} is now taken by another ${service.kind.type} (${clash.id}): rename that ` +
          `${service.kind.type} first. Nothing was changed.`,
      );
    }
  }

  private async checkReferences(
    workspaceId: string,
    service: ResourcesService,
    data: Record<string, unknown>,
  ): Promise<void> {
    const unknown = await service.missingReferences(workspaceId, data);
    if (unknown) {
      const { reference, missing } = unknown;
      throw new ConflictException(
        `${reference.field}: the ${reference.label} ${missing.join(', ')} that this ${service.kind.type} used no ` +
          `longer exists: restore it first. Nothing was changed.`,
      );
    }
  }

  /** A JSON null is Prisma.JsonNull for a JSON column (which is what an object there means). */
  private toPrisma(value: JsonValue, current?: unknown): unknown {
    return value === null && typeof current === 'object' && current !== null && !Array.isArray(current)
      ? Prisma.JsonNull
      : value;
  }

  private delegate(name: ResourceDelegate): Delegate {
    return this.txHost.tx[name];
  }
}
