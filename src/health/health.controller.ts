import { Controller, Get, Inject, ServiceUnavailableException } from '@nestjs/common';
import { type AppPrismaClient, PRISMA } from '../database/prisma-client.factory';
import { Public } from '../auth/public.decorator';
import { ApiRoute } from '../common/api-errors';

export interface HealthResponse {
  status: 'ok' | 'error';
  database: 'up' | 'down';
}

@Controller('health')
export class HealthController {
  constructor(@Inject(PRISMA) private readonly prisma: AppPrismaClient) {}

  @Public()
  @Get()
  @ApiRoute(200, 503)
  async check(): Promise<HealthResponse> {
    try {
      await this.prisma.$queryRaw`SELECT 1`;
    } catch {
      throw new ServiceUnavailableException({ status: 'error', database: 'down' });
    }
    return { status: 'ok', database: 'up' };
  }
}
