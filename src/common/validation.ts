import {
  applyDecorators,
  type ArgumentMetadata,
  BadRequestException,
  Body,
  ParseUUIDPipe,
  type Type,
  ValidationPipe,
} from '@nestjs/common';
import { Transform } from 'class-transformer';
import { IsObject, IsString, Length } from 'class-validator';

export const VALIDATION_OPTIONS = {
  whitelist: true,
  forbidNonWhitelisted: true,
  transform: true,
  stopAtFirstError: false,
} as const;

/** A resource name: trimmed, then 1..200 characters. */
export function IsResourceName(): PropertyDecorator {
  return applyDecorators(
    Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value)),
    IsString(),
    Length(1, 200, { message: 'name must be 1 to 200 characters long after trimming' }),
  );
}

/**
 * Ids (a UUID, or a list of them) in lower case, as PostgreSQL returns a uuid: the same id written
 * in upper case then matches it wherever ids are compared as text (references, lists of ids).
 */
export function LowerCaseIds(): PropertyDecorator {
  const lower = (value: unknown) => (typeof value === 'string' ? value.toLowerCase() : value);
  return Transform(({ value }: { value: unknown }) => (Array.isArray(value) ? value.map(lower) : lower(value)));
}

/**
 * A free-form JSON object (a config, a definition), kept exactly as sent. class-transformer would
 * copy it key by key and skip every key whose name is a function on a plain object (`toString`,
 * `valueOf`, `hasOwnProperty`), silently dropping them; this hands the parsed JSON through instead.
 */
export function IsJsonObject(): PropertyDecorator {
  return applyDecorators(
    Transform(({ obj, key }: { obj: Record<string, unknown>; key: string }) => obj[key]),
    IsObject(),
  );
}

/** A body validated against `dto` even where the parameter's static type is generic. */
export function ValidBody(dto: Type<unknown>): ParameterDecorator {
  return Body(new ValidationPipe({ ...VALIDATION_OPTIONS, expectedType: dto }));
}

/** A UUID path parameter, in lower case (as PostgreSQL writes a uuid); 400 naming it otherwise. */
class ParseLowerCaseUUIDPipe extends ParseUUIDPipe {
  override async transform(value: string, metadata: ArgumentMetadata): Promise<string> {
    return (await super.transform(value, metadata)).toLowerCase();
  }
}

export function uuidPipe(name: string): ParseUUIDPipe {
  return new ParseLowerCaseUUIDPipe({ exceptionFactory: () => new BadRequestException(`${name} must be a UUID.`) });
}
