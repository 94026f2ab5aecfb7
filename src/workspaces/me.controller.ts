import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { ApiRoute } from '../common/api-errors';
import { MeService, type Me } from './me.service';

/** Who the token belongs to and the workspaces they can open: what the web page signs in with. */
@ApiTags('me')
@ApiBearerAuth()
@Controller('me')
export class MeController {
  constructor(private readonly me: MeService) {}

  @Get()
  @ApiRoute(200, 401, 503)
  get(): Promise<Me> {
    return this.me.get();
  }
}
