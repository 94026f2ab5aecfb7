import { type INestApplication, RequestMethod } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { jsonOnly } from './common/json-only.middleware';
import { requestIdHeader } from './request-context/request-id';
import { WEB_ROOT } from './web/web.controller';

/**
 * The page and its assets: only the app's own files, nothing inline, never in a frame. The API
 * documentation page (Swagger UI) ships inline styles and scripts of its own, so /api/docs gets them.
 */
const PAGE_CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    fontSrc: ["'self'"],
    connectSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    scriptSrcAttr: ["'none'"],
  },
};
const DOCS_CSP = {
  ...PAGE_CSP,
  directives: {
    ...PAGE_CSP.directives,
    scriptSrc: ["'self'", "'unsafe-inline'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
  },
};
const NO_CACHE = 'no-cache';

/** What every HTTP entry point (server and tests) applies to the application. */
export function setupApp(app: INestApplication): INestApplication {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
  express.use(requestIdHeader);
  const pageHeaders = helmet({ contentSecurityPolicy: PAGE_CSP, frameguard: { action: 'deny' } });
  const docsHeaders = helmet({ contentSecurityPolicy: DOCS_CSP, frameguard: { action: 'deny' } });
  express.use((req: Request, res: Response, next: NextFunction) =>
    (req.path.startsWith('/api/docs') ? docsHeaders : pageHeaders)(req, res, next),
  );
  // Audit data must not stay in browser or proxy caches: every API response, exports included.
  express.use('/api', (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  express.use('/api', jsonOnly);
  app.setGlobalPrefix('api', {
    exclude: [
      { path: '/', method: RequestMethod.GET },
      { path: 'settings/audit-logs', method: RequestMethod.GET },
    ],
  });
  // The page's files are revalidated on each load and never marked public (send keeps a header set here).
  express.useStaticAssets(WEB_ROOT, {
    prefix: '/assets/',
    index: false,
    setHeaders: (res: Response) => res.setHeader('Cache-Control', NO_CACHE),
  });
  app.enableShutdownHooks();
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Audit log service')
      .setDescription('Workspaces, their resources, and the audit log of every change to them.')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs-json' });
  return app;
}
