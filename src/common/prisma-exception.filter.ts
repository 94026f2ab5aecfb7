import {
  type ArgumentsHost,
  Catch,
  ConflictException,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
  NotFoundException,
  PayloadTooLargeException,
  ServiceUnavailableException,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import type { Response } from 'express';
import { Prisma } from '../generated/prisma/client';
import { DATABASE_RETRY_AFTER_SECONDS, databaseUnavailable, isDatabaseUnavailable } from './database-unavailable';
import { MAX_BODY } from './input-check.middleware';

/** PostgreSQL errors after which the transaction was rolled back and a retry may succeed. */
const ROLLED_BACK = new Set(['57014', '55P03', '40001', '40P01']);
/** Prisma's own codes for a database that did not answer in time or a transaction that ran out of time. */
const TIMED_OUT = new Set(['P1008', 'P2028']);

/** A refusal of Express's body parser (http-errors): a client error with a `type` such as `entity.too.large`. */
interface BodyParserError {
  type: string;
  status: number;
  message: string;
  expose: boolean;
}

function isBodyParserError(error: unknown): error is BodyParserError {
  if (!(error instanceof Error)) return false;
  const { type, status } = error as Partial<BodyParserError>;
  return typeof type === 'string' && typeof status === 'number' && status >= 400 && status < 500;
}

/** The body parser's refusals in the shape of every other error: `{ statusCode, message, error }`. */
function bodyParserException(error: BodyParserError): HttpException {
  switch (error.type) {
    case 'entity.too.large':
      return new PayloadTooLargeException(
        `The JSON body is larger than ${MAX_BODY.replace('kb', ' kB')}, the most accepted.`,
      );
    case 'charset.unsupported':
      return new UnsupportedMediaTypeException(`${error.message}: send JSON in UTF-8.`);
    case 'encoding.unsupported':
      return new UnsupportedMediaTypeException(
        `${error.message}: send the body uncompressed, or with gzip, deflate or br.`,
      );
    default: {
      const status = error.status as HttpStatus;
      const name = HttpStatus[status] ?? 'Bad Request';
      const title = name
        .split('_')
        .map((word) => word[0] + word.slice(1).toLowerCase())
        .join(' ');
      return new HttpException({ statusCode: status, message: error.message, error: title }, status);
    }
  }
}

/**
 * Every error a route lets out, mapped once: a database that cannot be reached → 503 with
 * `Retry-After`; unique → 409, missing row → 404, restricted reference → 409, timeouts → 503; the
 * body parser's refusals (a body too large, an unsupported charset) → their status, in Nest's shape.
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
    if (isBodyParserError(error)) return bodyParserException(error);
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
