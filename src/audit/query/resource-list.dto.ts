import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { ArrayMaxSize, IsIn, IsInt, IsOptional, IsString, IsUUID, Length, Max, Min } from 'class-validator';
import { RESOURCE_TYPES, type ResourceType } from '../capture/audited-resources';
import { toList } from './audit-log-query.dto';

/** `GET …/resources`: every live resource of the workspace, for auditors. */
export class ResourceListQueryDto {
  @ApiPropertyOptional({ enum: RESOURCE_TYPES, isArray: true })
  @IsOptional()
  @Transform(toList)
  @ArrayMaxSize(RESOURCE_TYPES.length * 2)
  @IsIn(RESOURCE_TYPES, { each: true, message: `resourceType must be one or more of ${RESOURCE_TYPES.join(', ')}` })
  resourceType?: ResourceType[];

  @ApiPropertyOptional({
    description: 'Resource ids, repeated or comma-separated; at most 200 (names for the ids a diff refers to)',
    type: [String],
  })
  @IsOptional()
  @Transform(toList)
  @ArrayMaxSize(200, { message: 'id accepts at most 200 ids' })
  @IsUUID('all', { each: true, message: 'id must be resource ids (UUIDs), repeated or comma-separated' })
  id?: string[];

  @ApiPropertyOptional({ description: "Case-insensitive substring of the resource's current name" })
  @IsOptional()
  @IsString()
  @Length(1, 200, { message: 'name must be 1 to 200 characters long' })
  name?: string;

  @ApiPropertyOptional({ description: 'Creator user ids, repeated or comma-separated; at most 50', type: [String] })
  @IsOptional()
  @Transform(toList)
  @ArrayMaxSize(50, { message: 'createdBy accepts at most 50 user ids' })
  @IsUUID('all', { each: true, message: 'createdBy must be user ids (UUIDs), repeated or comma-separated' })
  createdBy?: string[];

  @ApiPropertyOptional({ description: 'Last editor user ids, repeated or comma-separated; at most 50', type: [String] })
  @IsOptional()
  @Transform(toList)
  @ArrayMaxSize(50, { message: 'updatedBy accepts at most 50 user ids' })
  @IsUUID('all', { each: true, message: 'updatedBy must be user ids (UUIDs), repeated or comma-separated' })
  updatedBy?: string[];

  @ApiPropertyOptional({
    enum: ['true', 'false'],
    description: 'true: the last editor is not the creator; false: the last editor is the creator',
  })
  @IsOptional()
  @IsIn(['true', 'false'], { message: 'editedByOthers must be true or false' })
  editedByOthers?: 'true' | 'false';

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
