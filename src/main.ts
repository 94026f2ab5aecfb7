import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { setupApp } from './app.setup';
import { APP_CONFIG, type AppConfig, ConfigError, loadConfig } from './config/app-config';
import { DATABASE_CONNECTION, type DatabaseConnection } from './database/database-connection';
import { MigrationError } from './database/migrator';
import { DemoSeeder } from './workspaces/demo-seeder';
import { WorkspacesService } from './workspaces/workspaces.service';

async function main(): Promise<void> {
  loadConfig();
  const app = setupApp(await NestFactory.create(AppModule, { abortOnError: false }));
  const config = app.get<AppConfig>(APP_CONFIG);
  const connection = app.get<DatabaseConnection>(DATABASE_CONNECTION);
  await app.listen(config.port);
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
  if (error instanceof ConfigError || error instanceof MigrationError) {
    console.error(`Cannot start: ${error.message}`);
  } else {
    console.error(error);
  }
  process.exit(1);
});
