import { Controller, Get, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { join } from 'node:path';
import { Public } from '../auth/public.decorator';

export const WEB_ROOT = join(__dirname, 'public');

/** The Audit Logs page: one HTML document; the page itself signs in with an API token. */
@ApiExcludeController()
@Controller()
export class WebController {
  @Public()
  @Get(['/', '/settings/audit-logs'])
  page(@Res() res: Response): void {
    // Revalidated on each load, never `public`: the page is the same for everyone, but it is the app.
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(join(WEB_ROOT, 'index.html'), { cacheControl: false });
  }
}
