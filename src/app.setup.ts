import { type INestApplication, RequestMethod } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { WEB_ROOT } from './web/web.controller';

/** What every HTTP entry point (server and tests) applies to the application. */
export function setupApp(app: INestApplication): INestApplication {
  app.setGlobalPrefix('api', {
    exclude: [
      { path: '/', method: RequestMethod.GET },
      { path: 'settings/audit-logs', method: RequestMethod.GET },
    ],
  });
  (app as NestExpressApplication).useStaticAssets(WEB_ROOT, { prefix: '/assets/', index: false });
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
