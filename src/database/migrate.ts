import { ConfigError, loadConfig } from '../config/app-config';
import { openEmbedded, openPostgres } from './database-connection';
import { migrate, MigrationError } from './migrator';

/** `npm run db:migrate`: applies pending migrations to the configured database and lists them. */
async function main(): Promise<void> {
  const config = loadConfig();
  const connection = config.databaseUrl ? openPostgres(config.databaseUrl, 1) : await openEmbedded(config.pgliteDir);
  try {
    const applied = await connection.withExecutor((db) => migrate(db));
    console.log(
      applied.length === 0
        ? `${connection.description}: no pending migrations.`
        : `${connection.description}: applied ${applied.join(', ')}.`,
    );
  } finally {
    await connection.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError || error instanceof MigrationError ? error.message : error);
  process.exit(1);
});
