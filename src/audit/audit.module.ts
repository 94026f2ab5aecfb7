import { Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AuditLogsController } from './query/audit-logs.controller';
import { AuditLogsService } from './query/audit-logs.service';

@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        throttlers: [
          {
            name: 'default',
            ttl: 60_000,
            limit: (context) =>
              context.getHandler().name === 'export' ? config.exportRateLimit : config.auditRateLimit,
          },
        ],
      }),
    }),
  ],
  controllers: [AuditLogsController],
  providers: [AuditLogsService],
})
export class AuditModule {}
