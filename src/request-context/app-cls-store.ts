import type { ClsStore } from 'nestjs-cls';

/** Who is acting: a signed-in user, or the system itself (CLI, seed, scheduled jobs). */
export type Actor = { kind: 'user'; id: string; name: string; email: string } | { kind: 'system'; name: string };

export interface AppClsStore extends ClsStore {
  actor?: Actor;
  requestId?: string;
  ip?: string;
  userAgent?: string;
  /** Set around the writes of a restore, so that their entries say `restored` (see the capture). */
  auditAction?: 'restored';
  /** The API token of the request, once the AuthGuard has accepted it. */
  tokenId?: string;
  /** The caller's role in the workspace named by the route, once the AuthGuard has checked it. */
  workspaceRole?: 'admin' | 'member';
}
