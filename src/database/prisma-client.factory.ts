import { auditCapture, auditContextComment } from '../audit/capture/audit-capture.extension';
import { PrismaClient } from '../generated/prisma/client';

export const PRISMA = Symbol('PRISMA');
/** The client retention and partition upkeep use: PRISMA, or a maintenance role's (DATABASE_MAINTENANCE_URL). */
export const MAINTENANCE_PRISMA = Symbol('MAINTENANCE_PRISMA');

/** Optional provider: a function called with every SQL statement (statement-count tests, profiling). */
export const QUERY_LISTENER = Symbol('QUERY_LISTENER');
/** Called with each statement's SQL and its parameters as Prisma logs them (a JSON array). */
export type QueryListener = (sql: string, params: string) => void;

export type DriverAdapter = NonNullable<ConstructorParameters<typeof PrismaClient>[0]['adapter']>;

export interface PrismaClientOptions {
  adapter: DriverAdapter;
  /** See AuditCaptureOptions.requireContext. */
  requireAuditContext: boolean;
  /** Called with every SQL statement the client sends (benchmarks and statement-count tests). */
  onQuery?: QueryListener;
}

/** The one Prisma client of the application, with every extension applied here and nowhere else. */
export function createPrismaClient({ adapter, requireAuditContext, onQuery }: PrismaClientOptions) {
  const base = new PrismaClient({
    adapter,
    comments: [auditContextComment],
    log: onQuery ? [{ emit: 'event', level: 'query' }] : [],
  });
  if (onQuery)
    base.$on('query' as never, (event: { query: string; params: string }) => onQuery(event.query, event.params));
  return base.$extends(auditCapture({ requireContext: requireAuditContext }));
}

export type AppPrismaClient = ReturnType<typeof createPrismaClient>;
