import { ServiceUnavailableException } from '@nestjs/common';

/** Seconds a client is told to wait (`Retry-After`) when the database is unavailable. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

export const DATABASE_UNAVAILABLE_MESSAGE = 'The database is unavailable; nothing was changed. Retry shortly.';

/** Prisma's codes for a database it cannot reach, that does not exist, or that closed the connection. */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1003', 'P1017', 'P2024']);
/**
 * PostgreSQL's: the database does not exist (3D000), refuses connections (55000 "not currently
 * accepting connections"), is shutting down or starting (57P01..57P03), has no connection slot left
 * (53300), and every connection exception (class 08).
 */
const POSTGRES_CODES = new Set(['3D000', '55000', '57P01', '57P02', '57P03', '53300']);
/** The driver adapter's kinds for the same. */
const ADAPTER_KINDS = new Set([
  'DatabaseNotReachable',
  'DatabaseDoesNotExist',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
]);
/** Node's socket errors, and what `pg` throws when the server goes away under a query. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);
const DRIVER_MESSAGES =
  /Connection terminated|connection error and is not queryable|Client was closed and is not queryable|timeout exceeded when trying to connect/i;

function codesOf(error: object): unknown[] {
  const e = error as Record<string, unknown>;
  return [e.code, e.errorCode, e.originalCode, e.kind];
}

/**
 * True when `error` (or anything it wraps: `cause`, Prisma's `meta.driverAdapterError`) says the
 * database could not be reached, does not exist, or dropped the connection. Such an error reaches the
 * application from Prisma (known, unknown or initialization errors), from the driver adapter, or
 * raw from `pg`, depending on where the connection failed.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length > 0) {
    const current = queue.shift();
    if (typeof current !== 'object' || current === null || seen.has(current) || seen.size > 20) continue;
    seen.add(current);
    for (const code of codesOf(current)) {
      if (typeof code !== 'string') continue;
      if (PRISMA_CODES.has(code) || POSTGRES_CODES.has(code) || ADAPTER_KINDS.has(code) || SOCKET_CODES.has(code))
        return true;
      if (/^08[0-9A-Z]{3}$/.test(code)) return true;
    }
    const message = (current as { message?: unknown }).message;
    if (typeof message === 'string' && DRIVER_MESSAGES.test(message)) return true;
    const record = current as { cause?: unknown; meta?: { driverAdapterError?: unknown }; errors?: unknown };
    queue.push(record.cause, record.meta?.driverAdapterError);
    if (Array.isArray(record.errors)) queue.push(...(record.errors as unknown[]));
  }
  return false;
}

export function databaseUnavailable(): ServiceUnavailableException {
  return new ServiceUnavailableException(DATABASE_UNAVAILABLE_MESSAGE);
}
