import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from './database';
import { schemaDrift } from './schema-drift';

const SCHEMA = readFileSync(join(__dirname, '../prisma/schema.prisma'), 'utf8');

describe('schema.prisma and the migrations', () => {
  let database: TestDatabase;
  let client: Client;
  beforeAll(async () => {
    database = await createTestDatabase();
    client = new Client({ connectionString: database.url });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await database.drop();
  });

  it('agree: every table, column, type, nullability and declared index exists as the schema says', async () => {
    expect(await schemaDrift(SCHEMA, client)).toEqual([]);
  });

  it('disagree when a column is added to the schema without a migration', async () => {
    const drifted = SCHEMA.replace('  sql         String\n', '  sql         String\n  description String?\n');
    expect(drifted).not.toBe(SCHEMA);
    expect(await schemaDrift(drifted, client)).toEqual(['models.description (SqlModel.description) is missing']);
  });

  it('disagree on type, nullability and a missing index', async () => {
    const drifted = SCHEMA.replace('  label      String\n', '  label      String?\n')
      .replace(
        '  type        String\n  config      Json      @default("{}")\n  enabled',
        '  type        Int\n  config      Json      @default("{}")\n  enabled',
      )
      .replace('  @@index([modelId])\n', '  @@index([modelId])\n  @@index([name])\n');
    const drift = await schemaDrift(drifted, client);
    expect(drift).toEqual(
      expect.arrayContaining([
        'api_tokens.label is NOT NULL, schema says NULL',
        'destinations.type is text, schema says int4',
        'normal index on segments(name) is missing',
      ]),
    );
  });
});
