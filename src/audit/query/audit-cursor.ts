import { BadRequestException } from '@nestjs/common';
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface CursorPosition {
  occurredAt: Date;
  id: string;
}

/**
 * Opaque keyset cursors: the last entry's position, bound to its workspace and signed, so that a
 * modified cursor or one from another workspace is a 400 rather than a wrong page.
 */
export class AuditCursorCodec {
  /** `purpose` binds cursors to one listing, so that a cursor of another listing is refused too. */
  constructor(
    private readonly secret: string,
    private readonly purpose = '',
  ) {}

  encode(workspaceId: string, position: CursorPosition): string {
    const payload = Buffer.from(JSON.stringify([position.occurredAt.toISOString(), position.id])).toString('base64url');
    return `${payload}.${this.sign(workspaceId, payload)}`;
  }

  decode(workspaceId: string, cursor: string): CursorPosition {
    const invalid = new BadRequestException(
      'cursor is not valid here: pass the nextCursor of a previous page unchanged',
    );
    const [payload, signature, ...rest] = cursor.split('.');
    if (!payload || !signature || rest.length > 0) throw invalid;
    const expected = Buffer.from(this.sign(workspaceId, payload));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw invalid;
    try {
      const [occurredAt, id] = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as [string, string];
      const date = new Date(occurredAt);
      if (Number.isNaN(date.getTime()) || typeof id !== 'string') throw invalid;
      return { occurredAt: date, id };
    } catch {
      throw invalid;
    }
  }

  private sign(workspaceId: string, payload: string): string {
    return createHmac('sha256', this.secret)
      .update(`${this.purpose ? `${this.purpose}:` : ''}${workspaceId}.${payload}`)
      .digest('base64url')
      .slice(0, 32);
  }
}
