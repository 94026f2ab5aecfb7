import {
  type ArgumentsHost,
  Catch,
  ConflictException,
  type ExceptionFilter,
  NotFoundException,
  ServiceUnavailableException,
} from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { Prisma } from '../generated/prisma/client';

/** PostgreSQL errors after which the transaction was rolled back and a retry may succeed. */
const ROLLED_BACK = new Set(['57014', '55P03', '40001', '40P01']);
/** Prisma's own codes for a database that did not answer in time or a pool that had no connection. */
const UNAVAILABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028']);

/** Prisma's known errors, mapped once: unique → 409, missing row → 404, restricted reference → 409, timeouts → 503. */
@Catch(Prisma.PrismaClientKnownRequestError)
export class PrismaExceptionFilter extends BaseExceptionFilter implements ExceptionFilter {
  override catch(error: Prisma.PrismaClientKnownRequestError, host: ArgumentsHost): void {
    super.catch(this.map(error), host);
  }

  private map(error: Prisma.PrismaClientKnownRequestError): Error {
    const databaseCode = (error.meta as { driverAdapterError?: { cause?: { originalCode?: string } } } | undefined)
      ?.driverAdapterError?.cause?.originalCode;
    if (databaseCode && ROLLED_BACK.has(databaseCode)) {
      return new ServiceUnavailableException(
        'The database took too long or hit a conflict, so nothing was changed. Retry the request.',
      );
    }
    if (UNAVAILABLE.has(error.code)) {
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
