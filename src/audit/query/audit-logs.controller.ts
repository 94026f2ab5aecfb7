import {
  BadRequestException,
  Controller,
  Get,
  HttpCode,
  Inject,
  Logger,
  Param,
  Post,
  Query,
  Res,
  UseGuards,
} from '@nestjs/common';
import { ApiBearerAuth, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClsService } from 'nestjs-cls';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { AdminGuard } from '../../auth/admin.guard';
import { ApiErrors, ApiRoute, AUDIT_ROUTE_ERRORS } from '../../common/api-errors';
import { uuidPipe } from '../../common/validation';
import { AuditRestoreService, type RestoreResult } from '../restore/audit-restore.service';
import type { AuditEntry } from './audit-entry';
import { exportFilename } from './export-filename';
import { EXPORT_RETRY_AFTER_SECONDS, ExportSlots, TooManyExportsException } from './export-slots';
import { TokenThrottlerGuard } from './token-throttler.guard';
import { AuditLogExportDto, AuditLogQueryDto } from './audit-log-query.dto';
import { AuditReadsService } from './audit-reads.service';
import type { AppClsStore } from '../../request-context/app-cls-store';
import { type AuditLogPage, AuditLogsService, type ChainVerification, type FilterChoices } from './audit-logs.service';

/**
 * How often a running export asks whether its token may still read the log: a token revoked, or an
 * admin demoted or removed, during a long download stops it at the next chunk after this.
 */
export const EXPORT_ACCESS_RECHECK_MS = 2000;

@ApiTags('audit-logs')
@ApiBearerAuth()
@ApiErrors(...AUDIT_ROUTE_ERRORS)
@UseGuards(AdminGuard, TokenThrottlerGuard)
@Controller('workspaces/:workspaceId/audit-logs')
export class AuditLogsController {
  private readonly logger = new Logger('AuditExport');

  constructor(
    private readonly auditLogs: AuditLogsService,
    private readonly slots: ExportSlots,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly restorer: AuditRestoreService,
    private readonly reads: AuditReadsService,
    private readonly cls: ClsService<AppClsStore>,
  ) {}

  @Get()
  list(@Param('workspaceId') workspaceId: string, @Query() query: AuditLogQueryDto): Promise<AuditLogPage> {
    return this.auditLogs.list(workspaceId, query, query.limit, query.cursor);
  }

  /** Recorded in the log as `verified`, with its outcome. */
  @Get('verify')
  async verify(@Param('workspaceId') workspaceId: string): Promise<ChainVerification> {
    const outcome = await this.auditLogs.verifyChain(workspaceId);
    await this.reads.verified(workspaceId, outcome);
    return outcome;
  }

  @Get('filters')
  filters(@Param('workspaceId') workspaceId: string): Promise<FilterChoices> {
    return this.auditLogs.filterChoices(workspaceId);
  }

  /**
   * Streams the whole filtered log; each chunk is written (and drained) before the next is read.
   * Everything that can fail before the first byte (parameters, the first query) is answered with a
   * status; a failure after it, or a client that takes no chunk within AUDIT_EXPORT_STALL_SECONDS,
   * destroys the connection, so that the client sees an incomplete transfer, never a clean end.
   * Once its first byte is out, the export is recorded in the log (`exported`) when it ends: with
   * the entries sent and `completed` false when it was cut off. One refused before that sent nothing
   * and records nothing. Every EXPORT_ACCESS_RECHECK_MS the export checks that its token is not
   * revoked and its user still an admin of the workspace, and is cut off otherwise.
   */
  @Get('export')
  @ApiProduces('text/csv', 'application/x-ndjson')
  async export(
    @Param('workspaceId') workspaceId: string,
    @Query() query: AuditLogExportDto,
    @Res() res: Response,
  ): Promise<void> {
    let release: () => void;
    try {
      release = this.slots.acquire(workspaceId);
    } catch (error) {
      if (error instanceof TooManyExportsException) res.setHeader('Retry-After', String(EXPORT_RETRY_AFTER_SECONDS));
      throw error;
    }
    try {
      const format = query.format ?? 'csv';
      if (query.chain === 'true' && format !== 'ndjson') {
        throw new BadRequestException('chain=true applies to format=ndjson only: the CSV columns are fixed');
      }
      const progress = { rows: 0 };
      const chunks = this.auditLogs.exportChunks(workspaceId, query, format, query.chain === 'true', progress);
      const first = await chunks.next(); // a filter the database refuses fails here, before any header
      const filename = exportFilename(await this.auditLogs.workspaceName(workspaceId), query.from, query.to, format);
      res.setHeader(
        'Content-Type',
        format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      );
      res.setHeader('Content-Disposition', `attachment; filename="${filename}"`);
      const stallMs = this.config.exportStallSeconds * 1000;
      const tokenId = this.cls.get('tokenId');
      let checked = Date.now();
      let completed = false;
      try {
        if (!first.done && !(await this.write(res, first.value, stallMs))) return;
        for await (const chunk of chunks) {
          if (tokenId && Date.now() - checked >= EXPORT_ACCESS_RECHECK_MS) {
            checked = Date.now();
            if (!(await this.reads.mayStillRead(tokenId, workspaceId))) {
              this.logger.warn(
                `Export of workspace ${workspaceId} cut off: its token was revoked or lost admin access.`,
              );
              res.destroy();
              return;
            }
          }
          if (!(await this.write(res, chunk, stallMs))) return; // leaving the loop ends the generator
        }
        res.end();
        completed = true;
      } catch (error) {
        this.logger.warn(`Export of workspace ${workspaceId} cut off: ${(error as Error).message}`);
        res.destroy();
      } finally {
        // A client gone during the first chunk leaves before the loop: end the generator here too.
        await chunks.return(undefined);
        await this.reads.exported(workspaceId, { format, filters: query, rowCount: progress.rows, completed });
      }
    } finally {
      release();
    }
  }

  /**
   * Writes a chunk and waits until the client has taken it. False once the client has gone, or when
   * it took nothing for `stallMs` (the connection is then destroyed).
   */
  private async write(res: Response, chunk: string | Buffer, stallMs: number): Promise<boolean> {
    if (res.destroyed) return false;
    if (!res.write(chunk)) {
      const stop = new AbortController();
      const outcome = await Promise.race([
        once(res, 'drain', stop).then(() => 'drained' as const),
        once(res, 'close', stop).then(() => 'closed' as const),
        sleep(stallMs, 'stalled' as const, stop),
      ]).finally(() => stop.abort());
      if (outcome === 'stalled') {
        this.logger.warn(`Export cut off: the client took nothing for ${stallMs / 1000} s.`);
        res.destroy();
        return false;
      }
    }
    return !res.destroyed;
  }

  @Get(':id')
  get(@Param('workspaceId') workspaceId: string, @Param('id', uuidPipe('id')) id: string): Promise<AuditEntry> {
    return this.auditLogs.get(workspaceId, id);
  }

  /** Undoes one entry as a new change, recorded as `restored` (see AuditRestoreService). */
  @Post(':id/restore')
  @HttpCode(200)
  @ApiRoute(200, 409)
  restore(@Param('workspaceId') workspaceId: string, @Param('id', uuidPipe('id')) id: string): Promise<RestoreResult> {
    return this.restorer.restore(workspaceId, id);
  }
}
