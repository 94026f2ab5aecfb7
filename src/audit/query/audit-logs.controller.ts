import { BadRequestException, Controller, Get, Param, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { once } from 'node:events';
import { AdminGuard } from '../../auth/admin.guard';
import { uuidPipe } from '../../common/validation';
import type { AuditEntry } from './audit-entry';
import { TokenThrottlerGuard } from './token-throttler.guard';
import { AuditLogExportDto, AuditLogQueryDto } from './audit-log-query.dto';
import { type AuditLogPage, AuditLogsService, type ChainVerification, type FilterChoices } from './audit-logs.service';

@ApiTags('audit-logs')
@ApiBearerAuth()
@UseGuards(AdminGuard, TokenThrottlerGuard)
@Controller('workspaces/:workspaceId/audit-logs')
export class AuditLogsController {
  constructor(private readonly auditLogs: AuditLogsService) {}

  @Get()
  list(@Param('workspaceId') workspaceId: string, @Query() query: AuditLogQueryDto): Promise<AuditLogPage> {
    return this.auditLogs.list(workspaceId, query, query.limit, query.cursor);
  }

  @Get('verify')
  verify(@Param('workspaceId') workspaceId: string): Promise<ChainVerification> {
    return this.auditLogs.verifyChain(workspaceId);
  }

  @Get('filters')
  filters(@Param('workspaceId') workspaceId: string): Promise<FilterChoices> {
    return this.auditLogs.filterChoices(workspaceId);
  }

  /** Streams the whole filtered log; each chunk is written (and drained) before the next is read. */
  @Get('export')
  @ApiProduces('text/csv', 'application/x-ndjson')
  async export(
    @Param('workspaceId') workspaceId: string,
    @Query() query: AuditLogExportDto,
    @Res() res: Response,
  ): Promise<void> {
    const format = query.format ?? 'csv';
    if (query.chain === 'true' && format !== 'ndjson') {
      throw new BadRequestException('chain=true applies to format=ndjson only: the CSV columns are fixed');
    }
    const chunks = this.auditLogs.exportChunks(workspaceId, query, format, query.chain === 'true');
    const first = await chunks.next(); // a bad filter fails here, before any header is sent
    const range = [query.from, query.to].map((d) => (d ? d.slice(0, 10) : 'all')).join('_to_');
    res.setHeader('Content-Type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="audit-log_${workspaceId}_${range}.${format}"`);
    /** Writes a chunk and waits until the client has taken it; false once the client has gone. */
    const write = async (chunk: string): Promise<boolean> => {
      if (res.destroyed) return false;
      if (!res.write(chunk)) {
        const stop = new AbortController();
        await Promise.race([once(res, 'drain', stop), once(res, 'close', stop)]).finally(() => stop.abort());
      }
      return !res.destroyed;
    };
    if (!first.done && !(await write(first.value))) return;
    for await (const chunk of chunks) {
      if (!(await write(chunk))) return; // leaving the loop ends the generator: no more batches are read
    }
    res.end();
  }

  @Get(':id')
  get(@Param('workspaceId') workspaceId: string, @Param('id', uuidPipe('id')) id: string): Promise<AuditEntry> {
    return this.auditLogs.get(workspaceId, id);
  }
}
