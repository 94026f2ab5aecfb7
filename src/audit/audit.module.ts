import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { ThrottlerModule } from '@nestjs/throttler';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AuditDigestsController, AuditPublicKeysController } from './digests/audit-digests.controller';
import { AuditDigestsService } from './digests/audit-digests.service';
import { AuditSigningKeyService } from './digests/audit-signing-key.service';
import { AuditLogsController } from './query/audit-logs.controller';
import { AuditLogsService } from './query/audit-logs.service';
import { AuditRetentionController } from './retention/audit-retention.controller';
import { AuditRetentionService } from './retention/audit-retention.service';
import { AuditSealerService } from './seal/audit-sealer.service';

@Module({
  imports: [
    ScheduleModule.forRoot(),
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
  // The digest routes come before AuditLogsController's `:id`, which would otherwise take "digests".
  controllers: [AuditDigestsController, AuditPublicKeysController, AuditLogsController, AuditRetentionController],
  providers: [AuditLogsService, AuditRetentionService, AuditSealerService, AuditSigningKeyService, AuditDigestsService],
  exports: [AuditRetentionService, AuditSealerService, AuditDigestsService],
})
export class AuditModule {}
