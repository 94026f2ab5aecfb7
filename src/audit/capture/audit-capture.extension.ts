import type { SqlCommenterPlugin } from '@prisma/client/runtime/client';
import { ClsServiceManager } from 'nestjs-cls';
import { Prisma } from '../../generated/prisma/client';
import type { AppClsStore } from '../../request-context/app-cls-store';
import { AUDITED_BY_MODEL } from './audited-resources';

/** Thrown when a write would be recorded without the application's actor; its message says what to do. */
export class AuditCaptureError extends Error {
  override name = 'AuditCaptureError';
}

export interface AuditCaptureOptions {
  /**
   * Refuse writes to audited models made with no actor in the request context. On in development and
   * test, so that a forgotten context fails loudly; in production such a write is still recorded, as
   * the database role that made it.
   */
  requireContext: boolean;
}

/** What the capture triggers read from a statement's `audit` comment (see the capture migration). */
interface AuditContext {
  kind: 'user' | 'system';
  id?: string;
  name: string;
  email?: string;
  requestId?: string;
  ip?: string;
  userAgent?: string;
  /** Set while restoring an entry: the triggers record the change as `restored`. */
  action?: 'restored';
}

const WRITE_OPERATIONS = new Set([
  'create',
  'createMany',
  'createManyAndReturn',
  'update',
  'updateMany',
  'updateManyAndReturn',
  'upsert',
  'delete',
  'deleteMany',
]);

/**
 * The first `max` characters of `text`, counted as the validators count them (an emoji is one): a
 * cut between the two halves of a surrogate pair would leave JSON that the database refuses, and
 * with it the statement.
 */
function capped(text: string, max: number): string;
function capped(text: string | undefined, max: number): string | undefined;
function capped(text: string | undefined, max: number): string | undefined {
  if (text === undefined || text.length <= max) return text;
  return Array.from(text).slice(0, max).join('');
}

function currentContext(): AuditContext | undefined {
  const cls = ClsServiceManager.getClsService<AppClsStore>();
  if (!cls.isActive()) return undefined;
  const actor = cls.get('actor');
  if (!actor) return undefined;
  return {
    // Capped so that the tag stays within what the triggers read at the end of a statement.
    // An email is whole: every address the service takes (up to 320 characters) is recorded as it is.
    ...(actor.kind === 'user'
      ? { kind: 'user', id: actor.id, name: capped(actor.name, 200), email: capped(actor.email, 320) }
      : { kind: 'system', name: capped(actor.name, 200) }),
    requestId: capped(cls.get('requestId'), 128),
    ip: capped(cls.get('ip'), 64),
    userAgent: capped(cls.get('userAgent'), 512),
    ...(cls.get('auditAction') === 'restored' ? { action: 'restored' as const } : {}),
  };
}

/**
 * Attaches the acting user or system job, request id, ip and user agent to every statement the
 * client sends, as a trailing SQL comment that the database's capture triggers read. It rides in the
 * statement itself, so it reaches nested writes, batch and interactive transactions and raw SQL alike,
 * at no extra round trip. base64url keeps it inside the comment whatever the values hold.
 */
export const auditContextComment: SqlCommenterPlugin = () => {
  const context = currentContext();
  return context ? { audit: Buffer.from(JSON.stringify(context)).toString('base64url') } : {};
};

/** Refuses top-level writes to audited models made outside any actor's context (development and test). */
export function auditCapture(options: AuditCaptureOptions) {
  return Prisma.defineExtension({
    name: 'audit-capture',
    query: {
      $allModels: {
        $allOperations({ model, operation, args, query }) {
          if (options.requireContext && WRITE_OPERATIONS.has(operation) && AUDITED_BY_MODEL.has(model)) {
            if (!currentContext()) {
              throw new AuditCaptureError(
                `Audited write ${model}.${operation} with no actor in the request context. Requests get one from ` +
                  `the AuthGuard; scripts, seeds and jobs must wrap their work in runAsSystem('job-name', fn) ` +
                  `from src/request-context.`,
              );
            }
          }
          return query(args);
        },
      },
    },
  });
}
