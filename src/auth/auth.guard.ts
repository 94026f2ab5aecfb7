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
import type { AppClsStore } from '../request-context/app-cls-store';
import { isUuid } from '../common/uuid';
import { IS_PUBLIC } from './public.decorator';
import { hashToken, looksLikeToken } from './token';
import { TokenUsageService } from './token-usage.service';

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
    const [scheme, token, ...rest] = (request.headers.authorization ?? '').split(' ');
    if (scheme !== 'Bearer' || !token || rest.length > 0 || !looksLikeToken(token)) {
      throw new UnauthorizedException('Send an API token as "Authorization: Bearer <token>".');
    }
    const prisma = this.txHost.tx;
    const workspaceId = request.params?.workspaceId;
    const workspaceIsValid = workspaceId !== undefined && isUuid(workspaceId);
    // The caller's membership of the route's workspace comes with the token: one query per request.
    const found = await prisma.apiToken.findUnique({
      where: { tokenHash: hashToken(token) },
      select: {
        id: true,
        revokedAt: true,
        lastUsedAt: true,
        user: {
          select: {
            id: true,
            name: true,
            email: true,
            memberships: workspaceIsValid ? { where: { workspaceId }, select: { role: true } } : false,
          },
        },
      },
    });
    if (!found || found.revokedAt) throw new UnauthorizedException('The API token is unknown or revoked.');
    this.usage.used(found.id, found.lastUsedAt);
    const { memberships, ...user } = found.user;
    this.cls.set('actor', { kind: 'user', ...user });

    if (workspaceId !== undefined) {
      if (!workspaceIsValid) throw new BadRequestException('workspaceId must be a UUID.');
      const [membership] = memberships ?? [];
      if (!membership) throw new NotFoundException(`Workspace ${workspaceId} not found.`);
      this.cls.set('workspaceRole', membership.role);
    }
    return true;
  }
}
