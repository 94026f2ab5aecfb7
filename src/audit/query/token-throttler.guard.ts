import { HttpException, HttpStatus, Injectable } from '@nestjs/common';
import { ThrottlerGuard, type ThrottlerLimitDetail } from '@nestjs/throttler';
import type { ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { bearerToken, hashToken } from '../../auth/token';

/** The export has a tighter budget of its own; every other guarded route shares one. */
export function isExport(context: ExecutionContext): boolean {
  return context.getHandler().name === 'export';
}

/**
 * Rate limits per API token (not per address: many admins may share one office's address), with one
 * budget for all the audit-log and retention routes together and one for the export. The stock key
 * includes the route, which gave each route a budget of its own.
 */
@Injectable()
export class TokenThrottlerGuard extends ThrottlerGuard {
  protected override getTracker(req: Record<string, unknown>): Promise<string> {
    // The token itself: "Bearer t" and "bearer t" spend one budget.
    const header = (req as unknown as Request).headers.authorization ?? '';
    return Promise.resolve(hashToken(bearerToken(header) ?? header));
  }

  protected override generateKey(context: ExecutionContext, tracker: string, name: string): string {
    return `${name}:${isExport(context) ? 'export' : 'audit'}:${tracker}`;
  }

  protected override throwThrottlingException(context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    const seconds = Math.max(1, Math.ceil(detail.timeToBlockExpire));
    const scope = isExport(context) ? 'the export' : 'the audit-log and retention routes together';
    // In Nest's error shape: the stock ThrottlerException's body has no `error`.
    throw new HttpException(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        message: `Too many requests: ${scope} allows ${detail.limit} per ${Math.round(detail.ttl / 1000)} s for a token. Retry after ${seconds} s.`,
        error: 'Too Many Requests',
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}
