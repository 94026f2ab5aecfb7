import { Inject, Injectable } from '@nestjs/common';
import { ClsService } from 'nestjs-cls';
import { type AppPrismaClient, PRISMA } from '../database/prisma-client.factory';
import type { AppClsStore } from '../request-context/app-cls-store';

export interface Me {
  user: { id: string; name: string; email: string };
  workspaces: { id: string; name: string; role: 'admin' | 'member' }[];
}

@Injectable()
export class MeService {
  constructor(
    @Inject(PRISMA) private readonly prisma: AppPrismaClient,
    private readonly cls: ClsService<AppClsStore>,
  ) {}

  async get(): Promise<Me> {
    const actor = this.cls.get('actor');
    if (actor?.kind !== 'user') throw new Error('GET /api/me reached without a signed-in user.');
    const memberships = await this.prisma.membership.findMany({
      where: { userId: actor.id },
      select: { role: true, workspace: { select: { id: true, name: true } } },
      orderBy: { workspace: { name: 'asc' } },
    });
    return {
      user: { id: actor.id, name: actor.name, email: actor.email },
      workspaces: memberships.map((m) => ({ ...m.workspace, role: m.role })),
    };
  }
}
