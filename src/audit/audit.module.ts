import { Module } from '@nestjs/common';
import { AuditLogsController } from './query/audit-logs.controller';
import { AuditLogsService } from './query/audit-logs.service';

@Module({
  controllers: [AuditLogsController],
  providers: [AuditLogsService],
})
export class AuditModule {}
