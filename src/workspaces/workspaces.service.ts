import { Transactional, TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterPrisma } from '@nestjs-cls/transactional-adapter-prisma';
import { Injectable, NotFoundException } from '@nestjs/common';
import { generateToken } from '../auth/token';
import type { AppPrismaClient } from '../database/prisma-client.factory';
import type { Role } from '../generated/prisma/client';

export interface UserInput {
  email: string;
  name: string;
}

/** Workspaces, their users and API tokens: what the CLI and the demo seed create. */
@Injectable()
export class WorkspacesService {
  constructor(private readonly txHost: TransactionHost<TransactionalAdapterPrisma<AppPrismaClient>>) {}

  private get prisma() {
    return this.txHost.tx;
  }

  /** Creates a workspace with its first admin; returns a token shown only this once. */
  @Transactional()
  async bootstrap(workspaceName: string, admin: UserInput) {
    const workspace = await this.prisma.workspace.create({ data: { name: workspaceName } });
    const { userId, token } = await this.addUser(workspace.id, admin, 'admin');
    return { workspaceId: workspace.id, userId, token };
  }

  /** Adds a user (or an existing user, found by email) to a workspace and issues them a token. */
  @Transactional()
  async addUser(workspaceId: string, input: UserInput, role: Role) {
    const workspace = await this.prisma.workspace.findUnique({ where: { id: workspaceId }, select: { id: true } });
    if (!workspace) throw new NotFoundException(`Workspace ${workspaceId} not found.`);
    const user =
      (await this.prisma.user.findUnique({ where: { email: input.email } })) ??
      (await this.prisma.user.create({ data: { email: input.email, name: input.name } }));
    await this.prisma.membership.upsert({
      where: { workspaceId_userId: { workspaceId, userId: user.id } },
      create: { workspaceId, userId: user.id, role },
      update: { role },
    });
    const token = await this.issueToken(user.id, `${role} token`);
    return { userId: user.id, token };
  }

  async issueToken(userId: string, label: string): Promise<string> {
    const { token, hash } = generateToken();
    await this.prisma.apiToken.create({ data: { userId, label, tokenHash: hash } });
    return token;
  }

  async issueTokenByEmail(email: string): Promise<{ userId: string; token: string }> {
    const user = await this.prisma.user.findUnique({ where: { email }, select: { id: true } });
    if (!user) throw new NotFoundException(`No user with email ${email}.`);
    return { userId: user.id, token: await this.issueToken(user.id, 'cli token') };
  }

  async isEmpty(): Promise<boolean> {
    return (await this.prisma.workspace.count()) === 0;
  }
}
