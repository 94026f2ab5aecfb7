import { Body, Controller, Delete, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiProperty, ApiTags } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';
import { AdminGuard } from '../../auth/admin.guard';
import { ApiErrors, ApiRoute, AUDIT_ROUTE_ERRORS } from '../../common/api-errors';
import { uuidPipe } from '../../common/validation';
import { TokenThrottlerGuard } from '../query/token-throttler.guard';
import { type AuditStreamStatus, AuditStreamsService } from './audit-streams.service';
import { MAX_URL_LENGTH } from './stream-destination';

export class CreateAuditStreamDto {
  @ApiProperty({
    example: 'https://logs.example.com/audit',
    description: 'Where batches are POSTed: https:// to a public address (see AUDIT_STREAMS_ALLOW_PRIVATE)',
  })
  @IsString({ message: `url must be an https:// URL of at most ${MAX_URL_LENGTH} characters` })
  url!: string;

  @ApiProperty({
    writeOnly: true,
    minLength: 16,
    maxLength: 1024,
    description: 'Key of the X-Audit-Signature HMAC; never returned',
  })
  @IsString({ message: 'secret must be 16 to 1024 characters' })
  @Length(16, 1024, { message: 'secret must be 16 to 1024 characters' })
  secret!: string;
}

/** A workspace's log streams: its whole audit log, delivered to an HTTPS endpoint. Admins only. */
@ApiTags('audit-logs')
@ApiBearerAuth()
@ApiErrors(...AUDIT_ROUTE_ERRORS)
@UseGuards(AdminGuard, TokenThrottlerGuard)
@Controller('workspaces/:workspaceId/audit-streams')
export class AuditStreamsController {
  constructor(private readonly streams: AuditStreamsService) {}

  @Post()
  @ApiRoute(201, 409, 413)
  create(@Param('workspaceId') workspaceId: string, @Body() body: CreateAuditStreamDto): Promise<AuditStreamStatus> {
    return this.streams.create(workspaceId, body.url, body.secret);
  }

  @Get()
  async list(@Param('workspaceId') workspaceId: string): Promise<{ items: AuditStreamStatus[] }> {
    return { items: await this.streams.list(workspaceId) };
  }

  @Get(':id')
  get(@Param('workspaceId') workspaceId: string, @Param('id', uuidPipe('id')) id: string): Promise<AuditStreamStatus> {
    return this.streams.get(workspaceId, id);
  }

  @Delete(':id')
  @ApiRoute(204)
  @HttpCode(204)
  remove(@Param('workspaceId') workspaceId: string, @Param('id', uuidPipe('id')) id: string): Promise<void> {
    return this.streams.remove(workspaceId, id);
  }
}
