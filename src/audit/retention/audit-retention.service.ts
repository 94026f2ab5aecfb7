import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { AuditSealerService } from '../seal/audit-sealer.service';
import { type AppPrismaClient, MAINTENANCE_PRISMA, PRISMA } from '../../database/prisma-client.factory';

/** Months a workspace keeps its entries when nothing else is known of it (a deleted workspace). */
export const DEFAULT_RETENTION_MONTHS = 13;
const MAINTENANCE_JOB = 'audit-maintenance';
const PARTITION_NAME = /^audit_logs_p(\d{4})_(\d{2})$/;

export interface RetentionRunSummary {
  runId: string;
  status: 'succeeded' | 'failed';
  droppedPartitions: string[];
  entriesRemoved: number;
  /** Per workspace: entries removed and the time before which they were. */
  workspaces: { workspaceId: string; removedBefore: Date; entries: number }[];
  error?: string;
}

export interface WorkspaceRetention {
  retentionMonths: number;
  /** The newest runs that removed entries of this workspace, newest first. */
  removals: {
    runId: string;
    startedAt: Date;
    finishedAt: Date | null;
    status: string;
    actor: string;
    removedBefore: Date;
    entries: number;
    oldest: Date | null;
    newest: Date | null;
  }[];
}

/** Where a monthly partition's range ends (exclusive), from its name. */
export function partitionEnd(name: string): Date | undefined {
  const match = PARTITION_NAME.exec(name);
  return match ? new Date(Date.UTC(Number(match[1]), Number(match[2]), 1)) : undefined;
}

/**
 * Keeps the monthly partitions of the audit log ahead of time and applies each workspace's
 * retention: drops a whole month once every workspace's retention has passed its end, and deletes
 * older entries of the workspaces with a shorter retention in bounded batches. Runs on a schedule
 * (AUDIT_MAINTENANCE_SCHEDULE), as the system, and records each run.
 */
@Injectable()
export class AuditRetentionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('AuditRetention');

  constructor(
    @Inject(PRISMA) private readonly prisma: AppPrismaClient,
    @Inject(MAINTENANCE_PRISMA) private readonly maintenance: AppPrismaClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly scheduler: SchedulerRegistry,
    private readonly sealer: AuditSealerService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // The sealer creates a missing month itself; months ahead only save it the work.
    await this.createPartitionsAhead().catch((error: Error) =>
      this.logger.warn(
        `could not create audit log partitions ahead (${error.message}); ` +
          'set DATABASE_MAINTENANCE_URL to a member of audit_log_maintenance',
      ),
    );
    const job = CronJob.from({
      cronTime: this.config.auditMaintenanceSchedule,
      timeZone: 'UTC',
      onTick: () => this.maintain(),
      start: true,
    });
    this.scheduler.addCronJob(MAINTENANCE_JOB, job);
  }

  onApplicationShutdown(): void {
    if (this.scheduler.doesExist('cron', MAINTENANCE_JOB)) this.scheduler.deleteCronJob(MAINTENANCE_JOB);
  }

  /** The scheduled work; failures are logged and recorded, never thrown into the scheduler. */
  async maintain(): Promise<void> {
    try {
      await this.createPartitionsAhead();
      if (!this.config.auditRetentionEnabled) return;
      const run = await this.applyRetention();
      if (run) {
        this.logger.log(
          `retention run ${run.runId} ${run.status}: ${run.entriesRemoved} entries removed, ` +
            `${run.droppedPartitions.length} partitions dropped${run.error ? ` (${run.error})` : ''}`,
        );
      }
    } catch (error) {
      this.logger.error(`audit maintenance failed: ${(error as Error).message}`);
    }
  }

  /** Creates this month's partition and the next AUDIT_PARTITIONS_AHEAD; returns how many were new. */
  async createPartitionsAhead(): Promise<number> {
    const [row] = await this.maintenance.$queryRaw<{ created: number }[]>`
      SELECT "audit_log_create_partitions"(now(), now() + make_interval(months => ${this.config.auditPartitionsAhead}::int)) AS created`;
    return row.created;
  }

  /** The audit log's monthly partitions, oldest first. */
  async partitions(): Promise<string[]> {
    const rows = await this.prisma.$queryRaw<{ name: string }[]>`
      SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'audit_log_sealed'::regclass ORDER BY c.relname`;
    return rows.map((r) => r.name);
  }

  /**
   * One retention run. Returns undefined when another run (in this or another instance) is in
   * progress. The database decides what may go (each entry's own workspace retention, never under
   * 12 months) and records every removal on the run in the same statement; a failure stops the run
   * and is recorded on it.
   */
  async applyRetention(): Promise<RetentionRunSummary | undefined> {
    const [{ run: runId }] = await this.maintenance.$queryRaw<{ run: string | null }[]>`
      SELECT "audit_retention_begin"('system') AS run`;
    if (!runId) {
      this.logger.warn('a retention run is already in progress; this one is skipped');
      return undefined;
    }
    let error: string | undefined;
    try {
      await this.removeExpired(runId);
    } catch (failure) {
      error = (failure as Error).message;
    }
    await this.maintenance.$executeRaw`SELECT "audit_retention_finish"(${runId}::uuid, ${error ?? null}::text)`;
    const [run] = await this.prisma.$queryRaw<{ dropped_partitions: string[]; entries_removed: bigint }[]>`
      SELECT "dropped_partitions", "entries_removed" FROM "audit_retention_runs" WHERE "id" = ${runId}::uuid`;
    const removals = await this.prisma.$queryRaw<{ workspace_id: string; removed_before: Date; entries: bigint }[]>`
      SELECT "workspace_id", "removed_before", "entries" FROM "audit_retention_removals"
      WHERE "run_id" = ${runId}::uuid ORDER BY "workspace_id"`;
    return {
      runId,
      status: error ? 'failed' : 'succeeded',
      droppedPartitions: run.dropped_partitions,
      entriesRemoved: Number(run.entries_removed),
      workspaces: removals.map((r) => ({
        workspaceId: r.workspace_id,
        removedBefore: r.removed_before,
        entries: Number(r.entries),
      })),
      ...(error ? { error } : {}),
    };
  }

  private async removeExpired(runId: string): Promise<void> {
    // Entries still in the inbox are not removed: seal them first, so that retention sees them all.
    await this.sealer.seal();
    const workspaces = await this.prisma.$queryRaw<{ id: string; cutoff: Date }[]>`
      SELECT "id", now() - make_interval(months => greatest(12, "audit_retention_months")) AS cutoff
      FROM "workspaces" ORDER BY "id"`;
    const [{ fallback }] = await this.prisma.$queryRaw<{ fallback: Date }[]>`
      SELECT now() - make_interval(months => ${DEFAULT_RETENTION_MONTHS}::int) AS fallback`;
    // A month goes whole only when it ended before the cutoff of every workspace (and of entries
    // whose workspace is gone, which keep the default); the database checks it again.
    const everyoneCutoff = workspaces.reduce((min, w) => Math.min(min, w.cutoff.getTime()), fallback.getTime());
    for (const partition of await this.partitions()) {
      const end = partitionEnd(partition);
      if (!end || end.getTime() > everyoneCutoff) continue;
      await this.maintenance.$queryRaw`SELECT "audit_log_drop_partition"(${runId}::uuid, ${partition})`;
    }
    for (const workspace of workspaces) {
      for (;;) {
        const [{ removed }] = await this.maintenance.$queryRaw<{ removed: bigint }[]>`
          SELECT "audit_log_purge"(${runId}::uuid, ${workspace.id}::uuid, ${this.config.auditRetentionBatch}::int) AS removed`;
        if (Number(removed) < this.config.auditRetentionBatch) break;
      }
    }
    // The names that only removed entries had go with them.
    await this.maintenance.$queryRaw`
      SELECT "audit_resource_names_forget"("workspace_id") FROM "audit_retention_removals" WHERE "run_id" = ${runId}::uuid`;
  }

  async workspaceRetention(workspaceId: string): Promise<WorkspaceRetention> {
    const workspace = await this.prisma.workspace.findUniqueOrThrow({
      where: { id: workspaceId },
      select: { auditRetentionMonths: true },
    });
    const removals = await this.prisma.auditRetentionRemoval.findMany({
      where: { workspaceId },
      include: { run: true },
      orderBy: { run: { startedAt: 'desc' } },
      take: 100,
    });
    return {
      retentionMonths: workspace.auditRetentionMonths,
      removals: removals.map((r) => ({
        runId: r.runId,
        startedAt: r.run.startedAt,
        finishedAt: r.run.finishedAt,
        status: r.run.status,
        actor: r.run.actor,
        removedBefore: r.removedBefore,
        entries: Number(r.entries),
        oldest: r.oldest,
        newest: r.newest,
      })),
    };
  }

  async setRetention(workspaceId: string, months: number): Promise<WorkspaceRetention> {
    await this.prisma.workspace.update({ where: { id: workspaceId }, data: { auditRetentionMonths: months } });
    return this.workspaceRetention(workspaceId);
  }
}
