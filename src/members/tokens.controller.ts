import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { ClsService } from 'nestjs-cls';
import { ApiRoute } from '../common/api-errors';
import { uuidPipe } from '../common/validation';
import type { AppClsStore } from '../request-context/app-cls-store';
import { CreateTokenDto } from './members.dto';
import { type TokenSummary, TokensService } from './tokens.service';

/** The caller's own API tokens. */
@ApiTags('me')
@ApiBearerAuth()
@Controller('me/tokens')
export class TokensController {
  constructor(
    private readonly tokens: TokensService,
    private readonly cls: ClsService<AppClsStore>,
  ) {}

  private userId(): string {
    const actor = this.cls.get('actor');
    if (actor?.kind !== 'user') throw new Error('/api/me/tokens reached without a signed-in user.');
    return actor.id;
  }

  /** The token is in this response only; keep it, it cannot be shown again. */
  @Post()
  @ApiRoute(201, 400, 401, 413, 503)
  create(@Body() body: CreateTokenDto): Promise<{ id: string; label: string; token: string; createdAt: Date }> {
    return this.tokens.create(this.userId(), body.label);
  }

  @Get()
  @ApiRoute(200, 401, 503)
  async list(): Promise<{ items: TokenSummary[] }> {
    return { items: await this.tokens.list(this.userId()) };
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiRoute(204, 400, 401, 404, 503)
  revoke(@Param('id', uuidPipe('id')) id: string): Promise<void> {
    return this.tokens.revoke(this.userId(), id);
  }
}
