import { NestFactory } from '@nestjs/core';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AppModule } from './app.module';
import { isUuid } from './common/uuid';
import { verifyExportOffline } from './audit/digests/offline-verify';
import { AuditRetentionService } from './audit/retention/audit-retention.service';
import { APP_CONFIG, type AppConfig, ConfigError } from './config/app-config';
import { MigrationError } from './database/migrator';
import { EMAIL_INVISIBLE, EMAIL_INVISIBLE_MESSAGE, normalizeEmail } from './members/members.dto';
import { runAsSystem } from './request-context/run-with-actor';
import { DemoSeeder } from './workspaces/demo-seeder';
import { WorkspacesService } from './workspaces/workspaces.service';

const USAGE = `Usage:
  npm run cli -- bootstrap --workspace <name> --email <email> --name <name>
  npm run cli -- add-user --workspace <workspaceId> --email <email> --name <name> --role admin|member
  npm run cli -- token --email <email>
  npm run cli -- seed-demo
  npm run cli -- retention    (runs the audit-log retention job now: drops or deletes expired entries)
  npm run cli -- verify --export <ndjson file> --digest <digest.json> --public-key <pem file>
      (offline, no database: checks an export taken with format=ndjson&chain=true against a signed
       digest; prints one line per check and exits 1 when one fails)
Each of the others prints one JSON line. DATABASE_URL selects PostgreSQL; unset, the embedded database is used.`;

class UsageError extends Error {}

function required(values: Record<string, string | undefined>, name: string): string {
  const value = values[name]?.trim();
  if (!value) throw new UsageError(`--${name} is required.`);
  return value;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      workspace: { type: 'string' },
      email: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      export: { type: 'string' },
      digest: { type: 'string' },
      'public-key': { type: 'string' },
    },
    strict: true,
  });
  if (!command || !['bootstrap', 'add-user', 'token', 'seed-demo', 'retention', 'verify'].includes(command)) {
    throw new UsageError(command ? `Unknown command "${command}".` : 'No command given.');
  }
  if (command === 'verify') {
    const read = (name: string): string => {
      const path = required(values, name);
      try {
        return readFileSync(path, 'utf8');
      } catch (error) {
        throw new UsageError(`--${name} ${path}: ${(error as NodeJS.ErrnoException).code ?? 'cannot be read'}.`);
      }
    };
    const report = verifyExportOffline(read('export'), read('digest'), read('public-key'));
    for (const line of report.lines) console.log(line);
    if (!report.ok) process.exitCode = 1;
    return;
  }
  const email = (): string => {
    const value = normalizeEmail(required(values, 'email'));
    if (EMAIL_INVISIBLE.test(value)) throw new UsageError(`--email: ${EMAIL_INVISIBLE_MESSAGE}.`);
    if (!/^[^\s@]+@[^\s@]+$/.test(value)) throw new UsageError(`--email ${value} is not an email address.`);
    return value;
  };
  const role = (): 'admin' | 'member' => {
    const value = required(values, 'role');
    if (value !== 'admin' && value !== 'member') throw new UsageError('--role must be admin or member.');
    return value;
  };
  const workspaceId = (): string => {
    const value = required(values, 'workspace');
    if (!isUuid(value))
      throw new UsageError(`--workspace must be a workspace id (a UUID), not ${JSON.stringify(value)}.`);
    return value;
  };
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
  try {
    const workspaces = app.get(WorkspacesService);
    // Recorded as a system action naming the command: actor { kind: 'system', name: 'cli add-user' }.
    const result = await runAsSystem(`cli ${command}`, async () => {
      switch (command) {
        case 'bootstrap':
          return workspaces.bootstrap(required(values, 'workspace'), {
            email: email(),
            name: required(values, 'name'),
          });
        case 'add-user':
          return workspaces.addUser(workspaceId(), { email: email(), name: required(values, 'name') }, role());
        case 'token':
          return workspaces.issueTokenByEmail(email());
        case 'retention':
          return app.get<AppConfig>(APP_CONFIG).auditRetentionEnabled
            ? ((await app.get(AuditRetentionService).applyRetention()) ?? { skipped: 'a retention run is in progress' })
            : { skipped: 'retention is off (AUDIT_RETENTION=off)' };
        default:
          return app.get(DemoSeeder).seed();
      }
    });
    console.log(JSON.stringify(result));
  } finally {
    await app.close();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError || (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
  } else if (error instanceof ConfigError || error instanceof MigrationError) {
    console.error(error.message);
  } else {
    console.error((error as Error).message ?? error);
  }
  process.exit(1);
});
