import type { LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Server } from 'node:http';
import { resolve } from 'node:path';
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

/** Nest's own logs: warnings and errors, unless LOG_LEVEL asks for more. */
const LOG_LEVELS: Record<AppConfig['logLevel'], LogLevel[]> = {
  warn: ['error', 'warn'],
  log: ['error', 'warn', 'log'],
  debug: ['error', 'warn', 'log', 'debug', 'verbose'],
};

async function main(): Promise<void> {
  const settings = loadConfig();
  let started = Date.now();
  let waiting: NodeJS.Timeout | undefined;
  if (!settings.databaseUrl) {
    const dir = resolve(settings.pgliteDir);
    console.log(`Starting the embedded database in ${dir}; the first start takes longer…`);
    waiting = setInterval(
      () => console.log(`  still starting the embedded database (${Math.round((Date.now() - started) / 1000)} s)…`),
      5000,
    );
    waiting.unref();
  }
  // Logs are held until the application exists: a failure while it is built is reported by the one
  // line below instead of Nest's error dump.
  const app = setupApp(
    await NestFactory.create(AppModule, {
      abortOnError: false,
      bufferLogs: true,
      autoFlushLogs: false,
      logger: LOG_LEVELS[settings.logLevel],
    }).finally(() => clearInterval(waiting)),
  );
  app.flushLogs();
  const config = app.get<AppConfig>(APP_CONFIG);
  const connection = app.get<DatabaseConnection>(DATABASE_CONNECTION);
  if (connection.kind === 'embedded')
    console.log(`Embedded database ready in ${Math.round((Date.now() - started) / 1000)} s.`);
  started = Date.now();
  await app.init();
  await listen(app.getHttpServer() as Server, config.port);
  const url = `http://localhost:${config.port}`;
  console.log(`Audit log service listening on ${url} (${connection.description}; health: ${url}/api/health)`);

  if (connection.kind === 'embedded' && config.seedDemo && (await app.get(WorkspacesService).isEmpty())) {
    const demo = await app.get(DemoSeeder).seed();
    console.log(
      [
        '',
        `Demo workspace "Acme" created (${demo.workspaceId}).`,
        'Tokens are shown once; `npm run cli -- token --email alice@acme.test` issues a new one (server stopped).',
        `The Audit Logs page: ${url}/  (paste the admin's token)`,
        `  admin  ${demo.admin.email}  token ${demo.admin.token}`,
        `  member ${demo.member.email}  token ${demo.member.token}`,
        `Try: curl -H "Authorization: Bearer ${demo.admin.token}" ${url}/api/workspaces/${demo.workspaceId}/audit-logs`,
      ].join('\n'),
    );
  } else {
    console.log(
      [
        '',
        'Tokens are shown only when they are made: `npm run cli -- token --email <email>` issues a new one',
        '(with the server stopped, on the embedded database).',
        `The Audit Logs page: ${url}/  (paste an admin's token)`,
        `Try: curl -H "Authorization: Bearer <token>" ${url}/api/me`,
      ].join('\n'),
    );
  }
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
