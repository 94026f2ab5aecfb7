import { HttpException, HttpStatus, Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';

/** Seconds a client turned away by the export cap is told to wait. */
export const EXPORT_RETRY_AFTER_SECONDS = 10;

export class TooManyExportsException extends HttpException {
  constructor(message: string) {
    super(
      { statusCode: HttpStatus.TOO_MANY_REQUESTS, message, error: 'Too Many Requests' },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/**
 * Counts the exports running in this process, per workspace and in all: each holds a database
 * connection of its own (its COPY) and a response buffer, so their number is capped.
 */
@Injectable()
export class ExportSlots {
  private total = 0;
  private readonly perWorkspace = new Map<string, number>();

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /** Takes a slot, or throws 429; the returned function gives it back (once). */
  acquire(workspaceId: string): () => void {
    const mine = this.perWorkspace.get(workspaceId) ?? 0;
    const { exportsPerWorkspace, exportsPerProcess } = this.config;
    if (mine >= exportsPerWorkspace) {
      throw new TooManyExportsException(
        `${exportsPerWorkspace} ${exportsPerWorkspace === 1 ? 'export is' : 'exports are'} already running for this workspace, the most at once. Retry after ${EXPORT_RETRY_AFTER_SECONDS} s.`,
      );
    }
    if (this.total >= exportsPerProcess) {
      throw new TooManyExportsException(
        `${exportsPerProcess} ${exportsPerProcess === 1 ? 'export is' : 'exports are'} already running on this server, the most at once. Retry after ${EXPORT_RETRY_AFTER_SECONDS} s.`,
      );
    }
    this.perWorkspace.set(workspaceId, mine + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.perWorkspace.get(workspaceId) ?? 1) - 1;
      if (left > 0) this.perWorkspace.set(workspaceId, left);
      else this.perWorkspace.delete(workspaceId);
    };
  }
}
