import { ApiRoute, BODY_ERRORS } from '../common/api-errors';
import { TransactionHost } from '@nestjs-cls/transactional';
import { Controller, HttpCode, Module, Param, Patch } from '@nestjs/common';
import { ValidBody } from '../common/validation';
import {
  BulkEnableDto,
  CreateDestinationDto,
  CreateModelDto,
  CreateSegmentDto,
  CreateSourceDto,
  UpdateDestinationDto,
  UpdateModelDto,
  UpdateSegmentDto,
  UpdateSourceDto,
} from './resource.dto';
import { resourceController } from './resource.controller';
import { DESTINATION, MODEL, type ResourceKind, SEGMENT, SOURCE } from './resource-kinds';
import { ResourcesService } from './resources.service';

export const SOURCES = Symbol('SOURCES');
export const MODELS = Symbol('MODELS');
export const SEGMENTS = Symbol('SEGMENTS');
export const DESTINATIONS = Symbol('DESTINATIONS');

const SourcesController = resourceController(SOURCE, 'sources', SOURCES, {
  create: CreateSourceDto,
  update: UpdateSourceDto,
});
const ModelsController = resourceController(MODEL, 'models', MODELS, {
  create: CreateModelDto,
  update: UpdateModelDto,
});
const SegmentsController = resourceController(SEGMENT, 'segments', SEGMENTS, {
  create: CreateSegmentDto,
  update: UpdateSegmentDto,
});

const DestinationsBase = resourceController(DESTINATION, 'destinations', DESTINATIONS, {
  create: CreateDestinationDto,
  update: UpdateDestinationDto,
});

/** Destinations add bulk enable/disable; a subclass's routes register before `PATCH :id`, so it wins. */
@Controller('workspaces/:workspaceId/destinations')
class DestinationsController extends DestinationsBase {
  @Patch('bulk')
  @ApiRoute(200, ...BODY_ERRORS)
  @HttpCode(200)
  bulkEnable(@Param('workspaceId') workspaceId: string, @ValidBody(BulkEnableDto) body: BulkEnableDto) {
    return this.service.bulkUpdate(workspaceId, body.ids, { enabled: body.enabled });
  }
}

const serviceProvider = (token: symbol, kind: ResourceKind) => ({
  provide: token,
  inject: [TransactionHost],
  useFactory: (txHost: TransactionHost) => new ResourcesService(kind, txHost),
});

@Module({
  controllers: [SourcesController, ModelsController, SegmentsController, DestinationsController],
  providers: [
    serviceProvider(SOURCES, SOURCE),
    serviceProvider(MODELS, MODEL),
    serviceProvider(SEGMENTS, SEGMENT),
    serviceProvider(DESTINATIONS, DESTINATION),
  ],
  exports: [SOURCES, MODELS, SEGMENTS, DESTINATIONS],
})
export class ResourcesModule {}
