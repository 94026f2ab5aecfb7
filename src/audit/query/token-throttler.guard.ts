import { Injectable } from '@nestjs/common';
import { ThrottlerException, ThrottlerGuard, type ThrottlerLimitDetail } from '@nestjs/throttler';
import type { ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { hashToken } from '../../auth/token';

/** Rate limits per API token (not per address: many admins may share one office's address). */
@Injectable()
export class TokenThrottlerGuard extends ThrottlerGuard {
  protected override getTracker(req: Record<string, unknown>): Promise<string> {
    const header = (req as unknown as Request).headers.authorization ?? '';
    return Promise.resolve(hashToken(header));
  }

  protected override throwThrottlingException(_context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    const seconds = Math.max(1, Math.ceil(detail.timeToBlockExpire));
    throw new ThrottlerException(
      `Too many requests: this route allows ${detail.limit} per ${Math.round(detail.ttl / 1000)} s for a token. Retry after ${seconds} s.`,
    );
  }
}
