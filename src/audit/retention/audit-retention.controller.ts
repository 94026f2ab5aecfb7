import { Body, Controller, Get, Param, Put, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiProperty, ApiTags } from '@nestjs/swagger';
import { IsInt, Max, Min } from 'class-validator';
import { AdminGuard } from '../../auth/admin.guard';
import { ApiErrors, ApiRoute, AUDIT_ROUTE_ERRORS } from '../../common/api-errors';
import { TokenThrottlerGuard } from '../query/token-throttler.guard';
import { AuditRetentionService, type WorkspaceRetention } from './audit-retention.service';

export class AuditRetentionDto {
  @ApiProperty({ minimum: 12, maximum: 1200, example: 13, description: 'Months the audit log keeps entries' })
  @IsInt({ message: 'retentionMonths must be a whole number of months from 12 to 1200' })
  @Min(12, {
    message: 'retentionMonths must be at least 12: audit entries are kept at least 12 months (PCI DSS 10.5.1)',
  })
  @Max(1200, { message: 'retentionMonths must be at most 1200' })
  retentionMonths!: number;
}

/** A workspace's audit-log retention: the policy, and what retention runs removed. Admins only. */
@ApiTags('audit-logs')
@ApiBearerAuth()
@ApiErrors(...AUDIT_ROUTE_ERRORS)
@UseGuards(AdminGuard, TokenThrottlerGuard)
@Controller('workspaces/:workspaceId/audit-retention')
export class AuditRetentionController {
  constructor(private readonly retention: AuditRetentionService) {}

  @Get()
  get(@Param('workspaceId') workspaceId: string): Promise<WorkspaceRetention> {
    return this.retention.workspaceRetention(workspaceId);
  }

  @Put()
  @ApiRoute(200, 413)
  set(@Param('workspaceId') workspaceId: string, @Body() body: AuditRetentionDto): Promise<WorkspaceRetention> {
    return this.retention.setRetention(workspaceId, body.retentionMonths);
  }
}
