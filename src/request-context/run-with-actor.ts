import { ClsServiceManager } from 'nestjs-cls';
import { randomUUID } from 'node:crypto';
import type { Actor, AppClsStore } from './app-cls-store';

/**
 * Runs `fn` in a fresh request-like context with the given actor, so that work outside HTTP
 * requests (CLI, seed, jobs) is audited with an explicit actor instead of being refused.
 */
export function runWithActor<T>(actor: Actor, fn: () => Promise<T>): Promise<T> {
  const cls = ClsServiceManager.getClsService<AppClsStore>();
  // Awaited inside the context: a Prisma query is lazy and reads the context only when awaited.
  return cls.run({ ifNested: 'override' }, async () => {
    cls.set('actor', actor);
    cls.set('requestId', randomUUID());
    return await fn();
  });
}

/** runWithActor for the system itself; `name` says which part of it (cli, seed, retention). */
export function runAsSystem<T>(name: string, fn: () => Promise<T>): Promise<T> {
  return runWithActor({ kind: 'system', name }, fn);
}

/**
 * Runs `fn` in the current context (same actor and request id) with its writes marked as a restore:
 * the capture triggers record them with action `restored` instead of `created` or `updated`.
 */
export function runAsRestore<T>(fn: () => Promise<T>): Promise<T> {
  const cls = ClsServiceManager.getClsService<AppClsStore>();
  return cls.run({ ifNested: 'inherit' }, async () => {
    cls.set('auditAction', 'restored');
    return await fn();
  });
}
