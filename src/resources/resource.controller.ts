import { Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, type Type } from '@nestjs/common';
import { ApiRoute, BODY_ERRORS, WORKSPACE_ROUTE_ERRORS } from '../common/api-errors';
import { uuidPipe, ValidBody } from '../common/validation';
import { BulkIdsDto } from './resource.dto';
import type { ResourceKind } from './resource-kinds';
import type { ResourceResponse, ResourcesService } from './resources.service';

/** A controller class for one resource type: the same routes for all four, each with its own DTOs. */
export function resourceController(
  kind: ResourceKind,
  path: string,
  token: symbol,
  dtos: { create: Type<object>; update: Type<object> },
) {
  @Controller(`workspaces/:workspaceId/${path}`)
  class ResourceController {
    constructor(@Inject(token) readonly service: ResourcesService) {}

    @Get()
    @ApiRoute(200, ...WORKSPACE_ROUTE_ERRORS)
    async list(@Param('workspaceId') workspaceId: string): Promise<{ items: ResourceResponse[] }> {
      return { items: await this.service.list(workspaceId) };
    }

    @Get(':id')
    @ApiRoute(200, ...WORKSPACE_ROUTE_ERRORS)
    get(@Param('workspaceId') workspaceId: string, @Param('id', uuidPipe('id')) id: string): Promise<ResourceResponse> {
      return this.service.get(workspaceId, id);
    }

    @Post()
    @ApiRoute(201, ...BODY_ERRORS, 409)
    create(
      @Param('workspaceId') workspaceId: string,
      @ValidBody(dtos.create) body: Record<string, unknown>,
    ): Promise<ResourceResponse> {
      return this.service.create(workspaceId, { ...body });
    }

    @Post('bulk-delete')
    @ApiRoute(200, ...BODY_ERRORS, 409)
    @HttpCode(200)
    bulkDelete(@Param('workspaceId') workspaceId: string, @ValidBody(BulkIdsDto) body: BulkIdsDto) {
      return this.service.bulkDelete(workspaceId, body.ids);
    }

    @Patch(':id')
    @ApiRoute(200, ...BODY_ERRORS, 409)
    update(
      @Param('workspaceId') workspaceId: string,
      @Param('id', uuidPipe('id')) id: string,
      @ValidBody(dtos.update) body: Record<string, unknown>,
    ): Promise<ResourceResponse> {
      return this.service.update(workspaceId, id, { ...body });
    }

    @Delete(':id')
    @ApiRoute(204, ...WORKSPACE_ROUTE_ERRORS, 409)
    @HttpCode(204)
    remove(@Param('workspaceId') workspaceId: string, @Param('id', uuidPipe('id')) id: string): Promise<void> {
      return this.service.remove(workspaceId, id);
    }
  }
  Object.defineProperty(ResourceController, 'name', { value: `${kind.label}sController` });
  return ResourceController;
}
