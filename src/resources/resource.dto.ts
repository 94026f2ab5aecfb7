import { PartialType } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsString,
  IsUUID,
  Length,
  ValidateIf,
} from 'class-validator';
import { IsJsonObject, IsResourceName, LowerCaseIds } from '../common/validation';

/**
 * A field left out is left alone; one sent as null is validated like any other value (and refused):
 * no resource field accepts null.
 */
const NULL_IS_A_VALUE = { skipNullProperties: false };
const Omittable = () => ValidateIf((_object: object, value: unknown) => value !== undefined);

export class CreateSourceDto {
  @IsResourceName() name!: string;
  @IsString() @Length(1, 100) type!: string;
  @IsJsonObject() config!: Record<string, unknown>;
}
export class UpdateSourceDto extends PartialType(CreateSourceDto, NULL_IS_A_VALUE) {}

export class CreateModelDto {
  @IsResourceName() name!: string;
  @LowerCaseIds() @IsUUID() sourceId!: string;
  @IsString() @Length(1, 100_000) sql!: string;
}
export class UpdateModelDto extends PartialType(CreateModelDto, NULL_IS_A_VALUE) {}

export class CreateSegmentDto {
  @IsResourceName() name!: string;
  @LowerCaseIds() @IsUUID() modelId!: string;
  @IsJsonObject() definition!: Record<string, unknown>;
}
export class UpdateSegmentDto extends PartialType(CreateSegmentDto, NULL_IS_A_VALUE) {}

export class CreateDestinationDto {
  @IsResourceName() name!: string;
  @IsString() @Length(1, 100) type!: string;
  @IsJsonObject() config!: Record<string, unknown>;
  @Omittable() @IsBoolean() enabled?: boolean;
  @Omittable()
  @LowerCaseIds()
  @IsArray()
  @ArrayMaxSize(500)
  @ArrayUnique({ message: 'segmentIds must not repeat an id' })
  @IsUUID('all', { each: true, message: 'each value in segmentIds must be a UUID' })
  segmentIds?: string[];
}
export class UpdateDestinationDto extends PartialType(CreateDestinationDto, NULL_IS_A_VALUE) {}

export class BulkIdsDto {
  @LowerCaseIds()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(500)
  @IsUUID('all', { each: true, message: 'each value in ids must be a UUID' })
  ids!: string[];
}

export class BulkEnableDto extends BulkIdsDto {
  @IsBoolean() enabled!: boolean;
}
