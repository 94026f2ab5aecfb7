import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { ReadDatabase } from '../../database/read-database';
import { Prisma } from '../../generated/prisma/client';
import { RESOURCE_TABLES, type ResourceType } from '../capture/audited-resources';
import { AuditCursorCodec } from './audit-cursor';
import { likePattern } from './audit-logs.service';
import type { ResourceListQueryDto } from './resource-list.dto';

type UserRef = { id: string; name: string; email: string } | null;

/** One live resource as the auditors' listing shows it. */
export interface ResourceSummary {
  resourceType: ResourceType;
  id: string;
  name: string;
  createdAt: string;
  createdBy: UserRef;
  updatedAt: string;
  updatedBy: UserRef;
}

export interface ResourceListPage {
  items: ResourceSummary[];
  nextCursor: string | null;
}

interface Row {
  resource_type: ResourceType;
  id: string;
  name: string;
  created_at: Date;
  updated_at: Date;
  created_by_id: string | null;
  created_by_name: string | null;
  created_by_email: string | null;
  updated_by_id: string | null;
  updated_by_name: string | null;
  updated_by_email: string | null;
}

const user = (id: string | null, name: string | null, email: string | null): UserRef =>
  id ? { id, name: name ?? '', email: email ?? '' } : null;

/**
 * Every live resource of a workspace across the audited tables, most recently changed first, in one
 * statement: a UNION ALL generated from the registry (every audited table has the columns it reads),
 * so that a new audited type is listed with no code here.
 */
@Injectable()
export class ResourceListService {
  private readonly cursors: AuditCursorCodec;

  constructor(
    private readonly reads: ReadDatabase,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.cursors = new AuditCursorCodec(config.cursorSecret, 'resources');
  }

  async list(workspaceId: string, query: ResourceListQueryDto): Promise<ResourceListPage> {
    const limit = query.limit ?? 50;
    const after = query.cursor ? this.cursors.decode(workspaceId, query.cursor) : undefined;
    const where = [Prisma.sql`"workspace_id" = ${workspaceId}::uuid`];
    if (query.id?.length) where.push(Prisma.sql`"id" = ANY(${query.id}::uuid[])`);
    if (query.name) where.push(Prisma.sql`"name" ILIKE ${likePattern(query.name)}`);
    if (query.createdBy?.length) where.push(Prisma.sql`"created_by_id" = ANY(${query.createdBy}::uuid[])`);
    if (query.updatedBy?.length) where.push(Prisma.sql`"updated_by_id" = ANY(${query.updatedBy}::uuid[])`);
    // NULL (a system job or a change made directly in the database) is an editor like any other:
    // a user's resource last changed by the system was edited by someone else, and so was a system
    // job's resource last changed by a user; one created and last changed with no user was not.
    if (query.editedByOthers === 'true') where.push(Prisma.sql`"updated_by_id" IS DISTINCT FROM "created_by_id"`);
    if (query.editedByOthers === 'false') where.push(Prisma.sql`"updated_by_id" IS NOT DISTINCT FROM "created_by_id"`);
    if (after) {
      where.push(Prisma.sql`("updated_at", "id") < (${after.occurredAt}::timestamptz, ${after.id}::uuid)`);
    }
    const predicate = Prisma.join(where, ' AND ');
    const tables = RESOURCE_TABLES.filter(
      (r) => !query.resourceType?.length || query.resourceType.includes(r.type as ResourceType),
    );
    // Each table gives at most a page, newest change first; the outer query merges them.
    const branches = tables.map(
      (r) => Prisma.sql`(SELECT ${r.type}::text AS "resource_type", "id", "name", "created_at", "updated_at",
          "created_by_id", "updated_by_id"
        FROM ${Prisma.raw(`"${r.table.replace(/"/g, '""')}"`)} WHERE ${predicate}
        ORDER BY "updated_at" DESC, "id" DESC LIMIT ${limit + 1})`,
    );
    const rows = await this.reads.read(
      (db) => db.$queryRaw<Row[]>`
      SELECT r."resource_type", r."id", r."name", r."created_at", r."updated_at",
             r."created_by_id", c."name" AS "created_by_name", c."email" AS "created_by_email",
             r."updated_by_id", u."name" AS "updated_by_name", u."email" AS "updated_by_email"
      FROM (${Prisma.join(branches, ' UNION ALL ')}) r
      LEFT JOIN "users" c ON c."id" = r."created_by_id"
      LEFT JOIN "users" u ON u."id" = r."updated_by_id"
      ORDER BY r."updated_at" DESC, r."id" DESC LIMIT ${limit + 1}`,
    );
    const items = rows.slice(0, limit).map((row): ResourceSummary => ({
      resourceType: row.resource_type,
      id: row.id,
      name: row.name,
      createdAt: row.created_at.toISOString(),
      createdBy: user(row.created_by_id, row.created_by_name, row.created_by_email),
      updatedAt: row.updated_at.toISOString(),
      updatedBy: user(row.updated_by_id, row.updated_by_name, row.updated_by_email),
    }));
    const last = rows.length > limit ? rows[limit - 1] : undefined;
    return {
      items,
      nextCursor: last ? this.cursors.encode(workspaceId, { occurredAt: last.updated_at, id: last.id }) : null,
    };
  }
}
