import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

export const DEFAULT_TEST_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';
export const TEMPLATE_ENV = 'AUDIT_TEST_TEMPLATE_DB';

/** The server the tests use: TEST_DATABASE_URL, or the local PostgreSQL of these machines. */
export function testServerUrl(): string {
  return process.env.TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL;
}

export function databaseUrl(name: string): string {
  const url = new URL(testServerUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

export async function withAdminClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: testServerUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Names this run's databases so that its clean-up drops only its own: several runs (two checkouts,
 * CI beside a developer) may share one server.
 */
export function runDatabasePrefix(): string {
  const template = process.env[TEMPLATE_ENV];
  if (!template) throw new Error(`${TEMPLATE_ENV} is not set: run the tests through jest (npm test).`);
  return `${template.replace('audit_template_', 'audit_run')}_`;
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * A throw-away database for one test file: a copy of the migrated template (or an empty one),
 * dropped by `drop()`.
 */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const template = options.empty ? 'template0' : process.env[TEMPLATE_ENV];
  if (!template) throw new Error(`${TEMPLATE_ENV} is not set: run the tests through jest (npm test).`);
  const name = `${runDatabasePrefix()}${randomBytes(6).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`));
  return {
    name,
    url: databaseUrl(name),
    drop: () =>
      withAdminClient((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

/**
 * A login role with only the rights of audit_log_app (what the service runs as in production), or of
 * audit_log_maintenance (what its retention runs as).
 */
export async function createAppRole(
  group: 'audit_log_app' | 'audit_log_maintenance' = 'audit_log_app',
): Promise<{ name: string; drop(): Promise<void> }> {
  const name = `audit_app_test_${randomBytes(4).toString('hex')}`;
  await withAdminClient((c) => c.query(`CREATE ROLE "${name}" LOGIN IN ROLE ${group}`));
  return { name, drop: () => withAdminClient((c) => c.query(`DROP ROLE IF EXISTS "${name}"`)).then(() => undefined) };
}

/** `url` with `user` as the login and no password (the local server trusts it). */
export function asUser(url: string, user: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = '';
  return parsed.toString();
}
