import { Injectable, NotFoundException } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterPrisma } from '@nestjs-cls/transactional-adapter-prisma';
import { generateToken } from '../auth/token';
import type { AppPrismaClient } from '../database/prisma-client.factory';

export interface TokenSummary {
  id: string;
  label: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/**
 * The caller's own API tokens. The token itself exists only in the response that creates it; the
 * database keeps its hash, which no response, entry or export shows. Creating and revoking are
 * recorded by the capture as `api_token` entries in every workspace of the user.
 */
@Injectable()
export class TokensService {
  constructor(private readonly txHost: TransactionHost<TransactionalAdapterPrisma<AppPrismaClient>>) {}

  private get prisma() {
    return this.txHost.tx;
  }

  async create(userId: string, label: string): Promise<{ id: string; label: string; token: string; createdAt: Date }> {
    const { token, hash } = generateToken();
    const created = await this.prisma.apiToken.create({
      data: { userId, label, tokenHash: hash },
      select: { id: true, label: true, createdAt: true },
    });
    return { id: created.id, label: created.label, token, createdAt: created.createdAt };
  }

  /** The tokens that still work, newest first. */
  list(userId: string): Promise<TokenSummary[]> {
    return this.prisma.apiToken.findMany({
      where: { userId, revokedAt: null },
      select: { id: true, label: true, createdAt: true, lastUsedAt: true },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    });
  }

  /** Revokes at once: the next request with the token is refused (the guard reads it every time). */
  async revoke(userId: string, id: string): Promise<void> {
    const { count } = await this.prisma.apiToken.updateMany({
      where: { id, userId, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    if (count === 0) throw new NotFoundException(`Token ${id} not found.`);
  }
}
