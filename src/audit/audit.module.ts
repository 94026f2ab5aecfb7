import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { ThrottlerModule } from '@nestjs/throttler';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ResourcesModule } from '../resources/resources.module';
import { AuditDigestsController, AuditPublicKeysController } from './digests/audit-digests.controller';
import { AuditDigestsService } from './digests/audit-digests.service';
import { AuditSigningKeyService } from './digests/audit-signing-key.service';
import { AuditLogsController } from './query/audit-logs.controller';
import { AuditLogsService } from './query/audit-logs.service';
import { AuditReadsService } from './query/audit-reads.service';
import { ExportSlots } from './query/export-slots';
import { isExport } from './query/token-throttler.guard';
import { ResourceListController } from './query/resource-list.controller';
import { ResourceListService } from './query/resource-list.service';
import { AuditRestoreService } from './restore/audit-restore.service';
import { AuditRetentionController } from './retention/audit-retention.controller';
import { AuditRetentionService } from './retention/audit-retention.service';
import { AuditSealerService } from './seal/audit-sealer.service';
import { AuditStreamDeliverer } from './streams/audit-stream-deliverer.service';
import { AuditStreamsController } from './streams/audit-streams.controller';
import { AuditStreamsService } from './streams/audit-streams.service';
import { STREAM_RESOLVER, systemResolver } from './streams/stream-destination';
import { StreamSecretCipher } from './streams/stream-secret-cipher';

@Module({
  imports: [
    ResourcesModule,
    ScheduleModule.forRoot(),
    ThrottlerModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        throttlers: [
          {
            name: 'default',
            ttl: 60_000,
            limit: (context) => (isExport(context) ? config.exportRateLimit : config.auditRateLimit),
          },
        ],
      }),
    }),
  ],
  // The digest routes come before AuditLogsController's `:id`, which would otherwise take "digests".
  controllers: [
    AuditDigestsController,
    AuditPublicKeysController,
    AuditLogsController,
    AuditRetentionController,
    AuditStreamsController,
    ResourceListController,
  ],
  providers: [
    AuditLogsService,
    AuditReadsService,
    AuditRetentionService,
    AuditSealerService,
    ExportSlots,
    ResourceListService,
    AuditRestoreService,
    AuditSigningKeyService,
    AuditDigestsService,
    AuditStreamsService,
    AuditStreamDeliverer,
    StreamSecretCipher,
    { provide: STREAM_RESOLVER, useValue: systemResolver },
  ],
  exports: [AuditRetentionService, AuditSealerService, AuditDigestsService],
})
export class AuditModule {}
