import { Transactional, TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterPrisma } from '@nestjs-cls/transactional-adapter-prisma';
import { BadRequestException, ConflictException, NotFoundException } from '@nestjs/common';
import type { AppPrismaClient } from '../database/prisma-client.factory';
import type { ResourceDelegate, ResourceKind, ResourceReference } from './resource-kinds';
import { type Json, maskSecrets, restoreSecrets } from './secrets';

const ACTOR = { select: { id: true, name: true, email: true } } as const;
const WITH_ACTORS = { createdBy: ACTOR, updatedBy: ACTOR } as const;

type UserRef = { id: string; name: string; email: string } | null;

export type ResourceRow = Record<string, unknown> & {
  id: string;
  workspaceId: string;
  name: string;
  createdAt: Date;
  updatedAt: Date;
  createdBy: UserRef;
  updatedBy: UserRef;
};

export type ResourceResponse = Record<string, unknown> & { id: string; name: string };

/** The calls the service makes on a resource's Prisma delegate, shared by all four models. */
interface Delegate {
  findMany(args: object): Promise<ResourceRow[]>;
  findFirst(args: object): Promise<ResourceRow | null>;
  create(args: object): Promise<ResourceRow>;
  update(args: object): Promise<ResourceRow>;
  updateMany(args: object): Promise<{ count: number }>;
  delete(args: object): Promise<unknown>;
  deleteMany(args: object): Promise<{ count: number }>;
}

/**
 * Create, read, update and delete for one resource type. It holds no audit or creator/editor code:
 * the Prisma client's audit capture records every write made here.
 */
export class ResourcesService {
  constructor(
    readonly kind: ResourceKind,
    private readonly txHost: TransactionHost<TransactionalAdapterPrisma<AppPrismaClient>>,
  ) {}

  private delegate(name: ResourceDelegate = this.kind.delegate): Delegate {
    return this.txHost.tx[name] as unknown as Delegate;
  }

  async list(workspaceId: string): Promise<ResourceResponse[]> {
    const rows = await this.delegate().findMany({
      where: { workspaceId },
      include: WITH_ACTORS,
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    });
    return rows.map((row) => this.toResponse(row));
  }

  async get(workspaceId: string, id: string): Promise<ResourceResponse> {
    return this.toResponse(await this.find(workspaceId, id));
  }

  @Transactional()
  async create(workspaceId: string, input: Record<string, unknown>): Promise<ResourceResponse> {
    await this.checkName(workspaceId, input.name);
    await this.checkReferences(workspaceId, input);
    const row = await this.delegate().create({ data: { ...input, workspaceId }, include: WITH_ACTORS });
    return this.toResponse(row);
  }

  @Transactional()
  async update(workspaceId: string, id: string, input: Record<string, unknown>): Promise<ResourceResponse> {
    const existing = await this.find(workspaceId, id);
    const data = { ...input };
    for (const field of this.kind.secretFields) {
      if (data[field] !== undefined) data[field] = restoreSecrets(data[field] as Json, existing[field] as Json, field);
    }
    if (data.name !== undefined && data.name !== existing.name) await this.checkName(workspaceId, data.name, id);
    await this.checkReferences(workspaceId, data);
    const row = await this.delegate().update({ where: { id }, data, include: WITH_ACTORS });
    return this.toResponse(row);
  }

  @Transactional()
  async remove(workspaceId: string, id: string): Promise<void> {
    const existing = await this.find(workspaceId, id);
    await this.checkDependents(workspaceId, [existing.id]);
    await this.delegate().delete({ where: { id } });
  }

  /** Deletes those of `ids` that exist in the workspace; unknown ids are ignored, so a retry is harmless. */
  @Transactional()
  async bulkDelete(workspaceId: string, ids: string[]): Promise<{ deleted: number }> {
    await this.checkDependents(workspaceId, ids);
    const { count } = await this.delegate().deleteMany({ where: { workspaceId, id: { in: ids } } });
    return { deleted: count };
  }

  /** Sets one field on those of `ids` that exist; counts only the rows it actually changed. */
  @Transactional()
  async bulkUpdate(workspaceId: string, ids: string[], data: Record<string, unknown>): Promise<{ updated: number }> {
    const { count } = await this.delegate().updateMany({ where: { workspaceId, id: { in: ids }, NOT: data }, data });
    return { updated: count };
  }

  private async find(workspaceId: string, id: string): Promise<ResourceRow> {
    const row = await this.delegate().findFirst({ where: { id, workspaceId }, include: WITH_ACTORS });
    if (!row) throw new NotFoundException(`${this.kind.label} ${id} not found.`);
    return row;
  }

  private async checkName(workspaceId: string, name: unknown, exceptId?: string): Promise<void> {
    const clash = await this.delegate().findFirst({
      where: { workspaceId, name, ...(exceptId ? { id: { not: exceptId } } : {}) },
      select: { id: true },
    });
    if (clash) {
      throw new ConflictException(
        `A ${this.kind.type} named ${JSON.stringify(name)} already exists in this workspace.`,
      );
    }
  }

  /** The first reference of `input` that names resources not in the workspace, with their ids. */
  async missingReferences(
    workspaceId: string,
    input: Record<string, unknown>,
  ): Promise<{ reference: ResourceReference; missing: string[] } | undefined> {
    for (const reference of this.kind.references) {
      const value = input[reference.field];
      if (value === undefined || value === null) continue;
      const ids = reference.list ? (value as string[]) : [value as string];
      if (ids.length === 0) continue;
      const found = await this.delegate(reference.delegate).findMany({
        where: { workspaceId, id: { in: ids } },
        select: { id: true },
      });
      const known = new Set(found.map((row) => row.id));
      const missing = ids.filter((id) => !known.has(id));
      if (missing.length > 0) return { reference, missing };
    }
    return undefined;
  }

  private async checkReferences(workspaceId: string, input: Record<string, unknown>): Promise<void> {
    const unknown = await this.missingReferences(workspaceId, input);
    if (unknown) {
      const { reference, missing } = unknown;
      throw new BadRequestException(
        `${reference.field}: no ${reference.label} ${missing.join(', ')} in this workspace. Use the id of an existing ${reference.label}.`,
      );
    }
  }

  private async checkDependents(workspaceId: string, ids: string[]): Promise<void> {
    const dependents = this.kind.dependents;
    if (!dependents) return;
    const users = await this.delegate(dependents.delegate).findMany({
      where: { workspaceId, ...dependents.where(ids) },
      select: { name: true },
      orderBy: { name: 'asc' },
      take: 21,
    });
    if (users.length > 0) {
      const names = users.slice(0, 20).map((row) => JSON.stringify(row.name));
      const more = users.length > 20 ? ' and more' : '';
      throw new ConflictException(
        `${this.kind.label} is used by ${dependents.label} ${names.join(', ')}${more}. Delete them or point them elsewhere first.`,
      );
    }
  }

  private toResponse(row: ResourceRow): ResourceResponse {
    const response: ResourceResponse = { id: row.id, name: row.name };
    for (const field of this.kind.fields) {
      response[field] = this.kind.secretFields.includes(field) ? maskSecrets(row[field] as Json) : row[field];
    }
    return {
      ...response,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
      createdBy: row.createdBy ?? null,
      updatedBy: row.updatedBy ?? null,
    };
  }
}
