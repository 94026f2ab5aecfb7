import {
  type ArgumentsHost,
  Catch,
  ConflictException,
  type ExceptionFilter,
  HttpStatus,
  NotFoundException,
  ServiceUnavailableException,
} from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import type { Response } from 'express';
import { Prisma } from '../generated/prisma/client';
import { DATABASE_RETRY_AFTER_SECONDS, databaseUnavailable, isDatabaseUnavailable } from './database-unavailable';

/** PostgreSQL errors after which the transaction was rolled back and a retry may succeed. */
const ROLLED_BACK = new Set(['57014', '55P03', '40001', '40P01']);
/** Prisma's own codes for a database that did not answer in time or a transaction that ran out of time. */
const TIMED_OUT = new Set(['P1008', 'P2028']);

/**
 * Every error a route lets out, mapped once: a database that cannot be reached → 503 with
 * `Retry-After`; unique → 409, missing row → 404, restricted reference → 409, timeouts → 503.
 * Anything else goes to Nest's default handling (HttpExceptions as they are, the rest 500).
 * A response whose headers are already out (an export half-way) is cut off rather than ended,
 * so that the client sees an incomplete transfer instead of a complete-looking one.
 */
@Catch()
export class PrismaExceptionFilter extends BaseExceptionFilter implements ExceptionFilter {
  override catch(error: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    if (response.headersSent) {
      response.destroy(error instanceof Error ? error : undefined);
      return;
    }
    const mapped = this.map(error);
    if ((mapped as { getStatus?: () => number }).getStatus?.() === HttpStatus.SERVICE_UNAVAILABLE) {
      response.setHeader('Retry-After', String(DATABASE_RETRY_AFTER_SECONDS));
    }
    super.catch(mapped, host);
  }

  private map(error: unknown): unknown {
    if (isDatabaseUnavailable(error)) return databaseUnavailable();
    if (!(error instanceof Prisma.PrismaClientKnownRequestError)) return error;
    const databaseCode = (error.meta as { driverAdapterError?: { cause?: { originalCode?: string } } } | undefined)
      ?.driverAdapterError?.cause?.originalCode;
    if (databaseCode && ROLLED_BACK.has(databaseCode)) {
      return new ServiceUnavailableException(
        'The database took too long or hit a conflict, so nothing was changed. Retry the request.',
      );
    }
    if (TIMED_OUT.has(error.code)) {
      return new ServiceUnavailableException('The database is not answering right now. Retry the request shortly.');
    }
    switch (error.code) {
      case 'P2002':
        return new ConflictException(`A record with the same ${uniqueTarget(error)} already exists.`);
      case 'P2025':
        return new NotFoundException('The record was not found.');
      case 'P2003':
        return new ConflictException('The change would break a reference between records (something still uses it).');
      default:
        return error;
    }
  }
}

function uniqueTarget(error: Prisma.PrismaClientKnownRequestError): string {
  const meta = error.meta as {
    target?: unknown;
    driverAdapterError?: { cause?: { constraint?: { fields?: string[] } } };
  };
  const fields = Array.isArray(meta?.target) ? meta.target : meta?.driverAdapterError?.cause?.constraint?.fields;
  const names = (fields ?? []).map(String).filter((f) => !/workspace/i.test(f));
  return names.length > 0 ? names.join(', ').replace(/"/g, '') : 'value';
}
