import { PartialType } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsOptional,
  IsString,
  IsUUID,
  Length,
} from 'class-validator';
import { IsJsonObject, IsResourceName } from '../common/validation';

export class CreateSourceDto {
  @IsResourceName() name!: string;
  @IsString() @Length(1, 100) type!: string;
  @IsJsonObject() config!: Record<string, unknown>;
}
export class UpdateSourceDto extends PartialType(CreateSourceDto) {}

export class CreateModelDto {
  @IsResourceName() name!: string;
  @IsUUID() sourceId!: string;
  @IsString() @Length(1, 100_000) sql!: string;
}
export class UpdateModelDto extends PartialType(CreateModelDto) {}

export class CreateSegmentDto {
  @IsResourceName() name!: string;
  @IsUUID() modelId!: string;
  @IsJsonObject() definition!: Record<string, unknown>;
}
export class UpdateSegmentDto extends PartialType(CreateSegmentDto) {}

export class CreateDestinationDto {
  @IsResourceName() name!: string;
  @IsString() @Length(1, 100) type!: string;
  @IsJsonObject() config!: Record<string, unknown>;
  @IsOptional() @IsBoolean() enabled?: boolean;
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(500)
  @ArrayUnique({ message: 'segmentIds must not repeat an id' })
  @IsUUID('all', { each: true, message: 'each value in segmentIds must be a UUID' })
  segmentIds?: string[];
}
export class UpdateDestinationDto extends PartialType(CreateDestinationDto) {}

export class BulkIdsDto {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(500)
  @IsUUID('all', { each: true, message: 'each value in ids must be a UUID' })
  ids!: string[];
}

export class BulkEnableDto extends BulkIdsDto {
  @IsBoolean() enabled!: boolean;
}
