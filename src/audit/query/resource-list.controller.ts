import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AdminGuard } from '../../auth/admin.guard';
import { ApiErrors, WORKSPACE_ROUTE_ERRORS } from '../../common/api-errors';
import { ResourceListQueryDto } from './resource-list.dto';
import { type ResourceListPage, ResourceListService } from './resource-list.service';

/** Resources for auditors: every live resource with its creator and last editor (admins only). */
@ApiTags('audit-logs')
@ApiBearerAuth()
@ApiErrors(...WORKSPACE_ROUTE_ERRORS, 403)
@UseGuards(AdminGuard)
@Controller('workspaces/:workspaceId/resources')
export class ResourceListController {
  constructor(private readonly resources: ResourceListService) {}

  @Get()
  list(@Param('workspaceId') workspaceId: string, @Query() query: ResourceListQueryDto): Promise<ResourceListPage> {
    return this.resources.list(workspaceId, query);
  }
}
