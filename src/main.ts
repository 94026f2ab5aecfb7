import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Server } from 'node:http';
import { AppModule } from './app.module';
import { setupApp } from './app.setup';
import { APP_CONFIG, type AppConfig, loadConfig } from './config/app-config';
import { DATABASE_CONNECTION, type DatabaseConnection } from './database/database-connection';
import { describeStartupFailure } from './startup-failure';
import { DemoSeeder } from './workspaces/demo-seeder';
import { WorkspacesService } from './workspaces/workspaces.service';

/** Like app.listen, which also logs a failure through Nest: here the caller reports it, in one line. */
function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function main(): Promise<void> {
  loadConfig();
  // Logs are held until the application exists: a failure while it is built is reported by the one
  // line below instead of Nest's error dump.
  const app = setupApp(
    await NestFactory.create(AppModule, { abortOnError: false, bufferLogs: true, autoFlushLogs: false }),
  );
  app.flushLogs();
  const config = app.get<AppConfig>(APP_CONFIG);
  const connection = app.get<DatabaseConnection>(DATABASE_CONNECTION);
  await app.init();
  await listen(app.getHttpServer() as Server, config.port);
  const url = `http://localhost:${config.port}`;
  const logger = new Logger('Startup');
  logger.log(`Database: ${connection.description}`);

  if (connection.kind === 'embedded' && config.seedDemo && (await app.get(WorkspacesService).isEmpty())) {
    const demo = await app.get(DemoSeeder).seed();
    console.log(
      [
        '',
        `Demo workspace "Acme" created (${demo.workspaceId}).`,
        `  admin  ${demo.admin.email}  token ${demo.admin.token}`,
        `  member ${demo.member.email}  token ${demo.member.token}`,
        `Try: curl -H "Authorization: Bearer ${demo.admin.token}" ${url}/api/workspaces/${demo.workspaceId}/sources`,
        'Tokens are shown once; `npm run cli -- token --email alice@acme.test` issues a new one (server stopped).',
        '',
      ].join('\n'),
    );
  } else {
    console.log(
      `\nTo get a token: npm run cli -- token --email <email> (with the server stopped on the embedded database).\n`,
    );
  }
  console.log(`Audit log service listening on ${url} (health: ${url}/api/health)`);
}

main().catch((error: unknown) => {
  if (process.env.LOG_LEVEL === 'debug') console.error(error);
  console.error(`Cannot start: ${describeStartupFailure(error, startupEnv())}`);
  process.exit(1);
});

/** What the failure message needs, read leniently: a bad value was already reported as a ConfigError. */
function startupEnv(): { databaseUrl?: string; port?: number } {
  try {
    const { databaseUrl, port } = loadConfig();
    return { databaseUrl, port };
  } catch {
    return {};
  }
}
