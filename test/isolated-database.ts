import { randomBytes } from 'node:crypto';
import { databaseUrl, TEMPLATE_ENV, type TestDatabase, withAdminClient } from './database';

/**
 * A copy of the migrated template, like createTestDatabase, under a name outside `audit_test_*`.
 * The global teardown of every `npm test` run drops all `audit_test_*` databases on the server (those
 * that crashed test files left behind), including the live ones of another run on the same server:
 * on a machine shared by several people running tests at once, that kills long specs half-way.
 * Dropped by `drop()`; only a crashed run leaves it behind.
 */
export async function createIsolatedTestDatabase(prefix: string): Promise<TestDatabase> {
  const template = process.env[TEMPLATE_ENV];
  if (!template) throw new Error(`${TEMPLATE_ENV} is not set: run the tests through jest (npm test).`);
  const name = `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`));
  return {
    name,
    url: databaseUrl(name),
    drop: () =>
      withAdminClient((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}
