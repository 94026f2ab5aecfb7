import { TransactionHost } from '@nestjs-cls/transactional';
import type { TransactionalAdapterPrisma } from '@nestjs-cls/transactional-adapter-prisma';
import {
  BadRequestException,
  type CanActivate,
  type ExecutionContext,
  Injectable,
  NotFoundException,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { ClsService } from 'nestjs-cls';
import type { AppPrismaClient } from '../database/prisma-client.factory';
import { Prisma } from '../generated/prisma/client';
import type { AppClsStore } from '../request-context/app-cls-store';
import { isUuid } from '../common/uuid';
import { IS_PUBLIC } from './public.decorator';
import { bearerToken, hashToken, looksLikeToken } from './token';
import { TokenUsageService } from './token-usage.service';

interface TokenRow {
  id: string;
  revoked_at: Date | null;
  last_used_at: Date | null;
  user_id: string;
  name: string;
  email: string;
  role: 'admin' | 'member' | null;
}

/**
 * Resolves `Authorization: Bearer <token>` to a user, records them as the actor of the request,
 * and checks membership of the workspace in the route (404 for non-members, to hide its existence).
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly cls: ClsService<AppClsStore>,
    private readonly txHost: TransactionHost<TransactionalAdapterPrisma<AppPrismaClient>>,
    private readonly usage: TokenUsageService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const request = context.switchToHttp().getRequest<Request>();
    const token = bearerToken(request.headers.authorization);
    if (!token || !looksLikeToken(token)) {
      throw new UnauthorizedException('Send an API token as "Authorization: Bearer <token>".');
    }
    const prisma = this.txHost.tx;
    const workspaceId = request.params?.workspaceId;
    const workspaceIsValid = workspaceId !== undefined && isUuid(workspaceId);
    // The token, its user and the user's role in the route's workspace in one statement: a nested
    // Prisma read sends one query per table, three round trips on every request.
    const [found] = await prisma.$queryRaw<TokenRow[]>`
      SELECT t."id", t."revoked_at", t."last_used_at", u."id" AS user_id, u."name", u."email",
             ${workspaceIsValid ? Prisma.sql`(SELECT m."role"::text FROM "memberships" m WHERE m."workspace_id" = ${workspaceId}::uuid AND m."user_id" = u."id")` : Prisma.sql`NULL`} AS role
      FROM "api_tokens" t JOIN "users" u ON u."id" = t."user_id"
      WHERE t."token_hash" = ${hashToken(token)}`;
    if (!found || found.revoked_at) throw new UnauthorizedException('The API token is unknown or revoked.');
    this.usage.used(found.id, found.last_used_at);
    this.cls.set('actor', { kind: 'user', id: found.user_id, name: found.name, email: found.email });
    this.cls.set('tokenId', found.id);

    if (workspaceId !== undefined) {
      if (!workspaceIsValid) throw new BadRequestException('workspaceId must be a UUID.');
      if (!found.role) throw new NotFoundException(`Workspace ${workspaceId} not found.`);
      this.cls.set('workspaceRole', found.role);
      // The route reads the id as PostgreSQL writes it: a digest, a cursor or a comparison in the
      // service sees the same workspace whether the path spelt it in upper or lower case.
      request.params.workspaceId = workspaceId.toLowerCase();
    }
    return true;
  }
}
