import { Transactional, TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterPrisma } from '@nestjs-cls/transactional-adapter-prisma';
import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { ClsService } from 'nestjs-cls';
import { adminsOnly } from '../auth/admin.guard';
import type { AppPrismaClient } from '../database/prisma-client.factory';
import type { AppClsStore } from '../request-context/app-cls-store';
import type { MemberRole } from './members.dto';

export interface Member {
  userId: string;
  name: string;
  email: string;
  role: MemberRole;
}

/**
 * A workspace's members. Every change is a write to `memberships`, which the database's capture
 * records as a `member` entry (added, role changed, removed) with the acting user.
 */
@Injectable()
export class MembersService {
  constructor(
    private readonly txHost: TransactionHost<TransactionalAdapterPrisma<AppPrismaClient>>,
    private readonly cls: ClsService<AppClsStore>,
  ) {}

  private get prisma() {
    return this.txHost.tx;
  }

  async list(workspaceId: string): Promise<Member[]> {
    const memberships = await this.prisma.membership.findMany({
      where: { workspaceId },
      select: { role: true, user: { select: { id: true, name: true, email: true } } },
      orderBy: [{ user: { name: 'asc' } }, { user: { email: 'asc' } }],
    });
    return memberships.map((m) => ({ userId: m.user.id, name: m.user.name, email: m.user.email, role: m.role }));
  }

  /**
   * Adds a user (an existing one, found by email, as they are; else a new one) to the workspace.
   * Safe when the same email is added at once here and elsewhere: the user is inserted unless it
   * exists (waiting for a concurrent insert of it), and a second membership is "already a member".
   */
  @Transactional()
  async add(workspaceId: string, input: { email: string; name: string; role: MemberRole }) {
    await this.prisma.$executeRaw`
      INSERT INTO "users" ("id", "email", "name") VALUES (gen_random_uuid(), ${input.email}, ${input.name})
      ON CONFLICT ("email") DO NOTHING`;
    const user = await this.prisma.user.findUniqueOrThrow({ where: { email: input.email }, select: { id: true } });
    const added = await this.prisma.$executeRaw`
      INSERT INTO "memberships" ("id", "workspace_id", "user_id", "role")
      VALUES (gen_random_uuid(), ${workspaceId}::uuid, ${user.id}::uuid, ${input.role}::"Role")
      ON CONFLICT ("workspace_id", "user_id") DO NOTHING`;
    if (added === 0) throw new ConflictException(`${input.email} is already a member of this workspace.`);
    return { userId: user.id, role: input.role };
  }

  @Transactional()
  async changeRole(workspaceId: string, userId: string, role: MemberRole): Promise<Member> {
    const { member, otherAdmins } = await this.lock(workspaceId, userId);
    if (member.role === 'admin' && role !== 'admin' && otherAdmins === 0) throw lastAdmin('demoted');
    if (member.role !== role) {
      await this.prisma.membership.update({ where: { workspaceId_userId: { workspaceId, userId } }, data: { role } });
    }
    return { ...member, role };
  }

  @Transactional()
  async remove(workspaceId: string, userId: string): Promise<void> {
    const { member, otherAdmins } = await this.lock(workspaceId, userId);
    if (member.role === 'admin' && otherAdmins === 0) throw lastAdmin('removed');
    await this.prisma.membership.delete({ where: { workspaceId_userId: { workspaceId, userId } } });
  }

  /**
   * Locks the member and the workspace's admins, in one order for every caller, so that two admins
   * demoting or removing each other at once cannot both succeed (nor deadlock): the second waits for
   * the first and then counts the admins it left. The caller must still be among those admins once
   * the lock is held: the AdminGuard read their role before the wait, and an admin demoted or
   * removed meanwhile no longer changes anyone's membership.
   */
  private async lock(workspaceId: string, userId: string): Promise<{ member: Member; otherAdmins: number }> {
    const rows = await this.prisma.$queryRaw<Member[]>`
      SELECT u."id" AS "userId", u."name", u."email", m."role"::text AS "role"
      FROM "memberships" m JOIN "users" u ON u."id" = m."user_id"
      WHERE m."workspace_id" = ${workspaceId}::uuid AND (m."role" = 'admin' OR m."user_id" = ${userId}::uuid)
      ORDER BY m."user_id" FOR UPDATE OF m`;
    const actor = this.cls.get('actor');
    const callerIsAdmin = actor?.kind !== 'user' || rows.some((r) => r.userId === actor.id && r.role === 'admin');
    if (!callerIsAdmin) throw adminsOnly();
    const member = rows.find((r) => r.userId === userId);
    if (!member) throw new NotFoundException(`User ${userId} is not a member of this workspace.`);
    return { member, otherAdmins: rows.filter((r) => r.role === 'admin' && r.userId !== userId).length };
  }
}

function lastAdmin(change: 'demoted' | 'removed'): ConflictException {
  return new ConflictException(
    `The last admin of a workspace cannot be ${change}: make another member an admin first.`,
  );
}
