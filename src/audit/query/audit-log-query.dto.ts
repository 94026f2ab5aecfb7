import { BadRequestException } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsIn,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  Max,
  Min,
} from 'class-validator';
import { AUDIT_ACTIONS, type AuditAction, AUDITED_TYPES, type AuditedType } from '../capture/audited-resources';

/** Request ids as the service stores them (see the request-context middleware). */
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** `?a=1&a=2` and `?a=1,2` both become ['1', '2']. */
export const toList = ({ value }: { value: unknown }): unknown => {
  const values: unknown[] = Array.isArray(value) ? (value as unknown[]) : [value];
  return values
    .flatMap((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()) : [v]))
    .filter((v) => v !== '');
};

/** An ISO-8601 instant with a fraction of a second optional (up to nanoseconds) and an explicit offset or Z. */
export const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * An INSTANT as whole milliseconds since 1970 and the microseconds past them (Date.parse keeps only
 * milliseconds). A fraction finer than a microsecond is rounded up: the first microsecond at or after
 * the instant.
 */
function instantParts(instant: string): { millis: number; micros: number } {
  const fraction = /\.(\d+)/.exec(instant)?.[1] ?? '';
  const micros = Number(fraction.padEnd(6, '0').slice(3, 6)) + (/[1-9]/.test(fraction.slice(6)) ? 1 : 0);
  const millis = Date.parse(instant);
  return micros === 1000 ? { millis: millis + 1, micros: 0 } : { millis, micros };
}

/** An INSTANT in microseconds since 1970, to compare two of them. */
function instantMicros(instant: string): number {
  const { millis, micros } = instantParts(instant);
  return millis * 1000 + micros;
}

/** The last millisecond of year 9999 (UTC): later ones toISOString writes as +010000-…, which PostgreSQL refuses. */
const LAST_MILLIS = Date.parse('9999-12-31T23:59:59.999Z');

/**
 * An INSTANT as PostgreSQL reads it exactly: in UTC, at most microseconds, at most year 9999.
 * PostgreSQL refuses offsets beyond ±15:59, which ISO-8601 allows, and rounds a finer fraction to the
 * nearest microsecond, which can fall before the instant; the log's times are whole microseconds
 * before year 10000, so the first one at or after the instant, kept within them, bounds `from`
 * (inclusive) and `to` (exclusive) alike.
 */
function postgresInstant(instant: string): string {
  let { millis, micros } = instantParts(instant);
  if (millis > LAST_MILLIS) [millis, micros] = [LAST_MILLIS, 999];
  return `${new Date(millis).toISOString().slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}

/**
 * A `from` / `to` pair as given (not as JavaScript dates, which keep milliseconds while an instant
 * may carry microseconds), each as PostgreSQL reads it exactly (postgresInstant); a 400 when `from`
 * is after `to`.
 */
export function instantRange(from?: string, to?: string): { since?: string; until?: string } {
  if (from && to && instantMicros(from) > instantMicros(to)) {
    throw new BadRequestException(`from (${from}) must not be after to (${to})`);
  }
  return { since: from ? postgresInstant(from) : undefined, until: to ? postgresInstant(to) : undefined };
}

export class AuditLogFilterDto {
  @ApiPropertyOptional({ description: 'User ids, repeated or comma-separated; at most 50', type: [String] })
  @IsOptional()
  @Transform(toList)
  @ArrayMaxSize(50, { message: 'userId accepts at most 50 user ids' })
  @IsUUID('all', { each: true, message: 'userId must be user ids (UUIDs), repeated or comma-separated' })
  userId?: string[];

  @ApiPropertyOptional({ enum: AUDITED_TYPES, isArray: true })
  @IsOptional()
  @Transform(toList)
  @ArrayMaxSize(AUDITED_TYPES.length * 2)
  @IsIn(AUDITED_TYPES, { each: true, message: `resourceType must be one or more of ${AUDITED_TYPES.join(', ')}` })
  resourceType?: AuditedType[];

  @ApiPropertyOptional({ enum: AUDIT_ACTIONS, isArray: true })
  @IsOptional()
  @Transform(toList)
  @ArrayMaxSize(AUDIT_ACTIONS.length * 2)
  @IsIn(AUDIT_ACTIONS, { each: true, message: `action must be one or more of ${AUDIT_ACTIONS.join(', ')}` })
  action?: AuditAction[];

  @ApiPropertyOptional({ description: 'Every entry one request produced (the X-Request-Id of the request)' })
  @IsOptional()
  @IsString()
  @Matches(REQUEST_ID, { message: 'requestId must be a request id: 1 to 128 letters, digits, ".", "_", ":" or "-"' })
  requestId?: string;

  @ApiPropertyOptional({ description: 'Case-insensitive substring of the name at the time of the action' })
  @IsOptional()
  @IsString()
  @Length(1, 200, { message: 'resourceName must be 1 to 200 characters long' })
  resourceName?: string;

  @ApiPropertyOptional({ description: "One resource's whole history" })
  @IsOptional()
  @IsUUID('all', { message: 'resourceId must be a UUID' })
  resourceId?: string;

  @ApiPropertyOptional({ description: 'Inclusive lower bound, ISO-8601 with an offset or Z' })
  @IsOptional()
  @Matches(INSTANT, { message: 'from must be an ISO-8601 instant with an offset or Z, e.g. 2026-11-25T18:04:05.123Z' })
  @IsISO8601({ strict: true }, { message: 'from is not a valid date' })
  from?: string;

  @ApiPropertyOptional({ description: 'Exclusive upper bound, ISO-8601 with an offset or Z' })
  @IsOptional()
  @Matches(INSTANT, { message: 'to must be an ISO-8601 instant with an offset or Z, e.g. 2026-11-26T00:00:00Z' })
  @IsISO8601({ strict: true }, { message: 'to is not a valid date' })
  to?: string;
}

export class AuditLogQueryDto extends AuditLogFilterDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'limit must be a whole number from 1 to 200' })
  @Min(1, { message: 'limit must be a whole number from 1 to 200' })
  @Max(200, { message: 'limit must be a whole number from 1 to 200' })
  limit?: number;

  @ApiPropertyOptional({ description: 'The nextCursor of the previous page' })
  @IsOptional()
  @IsString()
  @Length(1, 500, { message: 'cursor must be the nextCursor of a previous page' })
  cursor?: string;
}

export class AuditLogExportDto extends AuditLogFilterDto {
  @ApiPropertyOptional({ enum: ['csv', 'ndjson'], default: 'csv' })
  @IsOptional()
  @IsIn(['csv', 'ndjson'], { message: 'format must be csv or ndjson' })
  format?: 'csv' | 'ndjson';

  @ApiPropertyOptional({
    enum: ['true', 'false'],
    default: 'false',
    description: "ndjson only: add each entry's place in the hash chain (`chain`), for offline verification",
  })
  @IsOptional()
  @IsIn(['true', 'false'], { message: 'chain must be true or false' })
  chain?: 'true' | 'false';
}
