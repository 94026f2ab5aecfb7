import { type ArgumentsHost, Catch, ConflictException, type ExceptionFilter, NotFoundException } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { Prisma } from '../generated/prisma/client';

/** Prisma's known errors, mapped once: unique → 409, missing row → 404, restricted reference → 409. */
@Catch(Prisma.PrismaClientKnownRequestError)
export class PrismaExceptionFilter extends BaseExceptionFilter implements ExceptionFilter {
  override catch(error: Prisma.PrismaClientKnownRequestError, host: ArgumentsHost): void {
    switch (error.code) {
      case 'P2002':
        return super.catch(
          new ConflictException(`A record with the same ${uniqueTarget(error)} already exists.`),
          host,
        );
      case 'P2025':
        return super.catch(new NotFoundException('The record was not found.'), host);
      case 'P2003':
        return super.catch(
          new ConflictException('The change would break a reference between records (something still uses it).'),
          host,
        );
      default:
        return super.catch(error, host);
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
