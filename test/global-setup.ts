import { Client } from 'pg';
import { migrate } from '../src/database/migrator';
import { pgExecutor } from '../src/database/sql-executor';
import { databaseUrl, TEMPLATE_ENV, testServerUrl, withAdminClient } from './database';

/** Checks that PostgreSQL answers, then builds one migrated template database that tests copy. */
export default async function globalSetup(): Promise<void> {
  try {
    await withAdminClient((client) => client.query('SELECT 1'));
  } catch (error) {
    throw new Error(
      `No PostgreSQL at ${testServerUrl()} (${(error as Error).message}). Start it, or set TEST_DATABASE_URL=postgresql://user@host:port/db.`,
    );
  }
  const name = `audit_template_${process.pid}`;
  await withAdminClient(async (client) => {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.query(`CREATE DATABASE "${name}"`);
  });
  const client = new Client({ connectionString: databaseUrl(name) });
  await client.connect();
  try {
    await migrate(pgExecutor(client));
  } finally {
    await client.end();
  }
  process.env[TEMPLATE_ENV] = name;
}
