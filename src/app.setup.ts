import type { INestApplication } from '@nestjs/common';

/** What every HTTP entry point (server and tests) applies to the application. */
export function setupApp(app: INestApplication): INestApplication {
  app.setGlobalPrefix('api');
  app.enableShutdownHooks();
  return app;
}
