import { ConfigError } from './config/app-config';
import { MigrationError } from './database/migrator';

/** Every code an error carries, including those of the errors it wraps (`cause`, AggregateError's `errors`). */
function codes(error: unknown): string[] {
  const found: string[] = [];
  const queue: unknown[] = [error];
  for (let i = 0; i < queue.length && i < 20; i++) {
    const current = queue[i] as { code?: unknown; cause?: unknown; errors?: unknown } | null;
    if (typeof current !== 'object' || current === null) continue;
    if (typeof current.code === 'string') found.push(current.code);
    queue.push(current.cause);
    if (Array.isArray(current.errors)) queue.push(...(current.errors as unknown[]));
  }
  return found;
}

/**
 * The one line `main` prints when the server cannot start: the cause and the fix, for the failures an
 * operator meets (bad configuration, pending migrations, a database that is unreachable, missing or
 * refuses the login, a port in use), and the error's message for anything else.
 */
export function describeStartupFailure(error: unknown, env: { databaseUrl?: string; port?: number }): string {
  if (error instanceof ConfigError || error instanceof MigrationError) return error.message;
  const found = codes(error);
  const has = (...wanted: string[]) => wanted.find((code) => found.includes(code));
  const port = env.port ?? 3000;
  if (has('EADDRINUSE')) {
    return `port ${port} is already in use. Stop the process using it, or set PORT to a free port.`;
  }
  if (has('EACCES') && !env.databaseUrl) {
    return `port ${port} needs privileges this process does not have. Set PORT to a port above 1023.`;
  }
  if (env.databaseUrl) {
    const url = new URL(env.databaseUrl);
    const where = `${url.hostname}:${url.port || 5432}`;
    const database = decodeURIComponent(url.pathname.slice(1)) || url.username;
    const network = has('ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET');
    if (network) {
      return `no PostgreSQL answers at ${where} (${network}). Start PostgreSQL, or fix the host and port in DATABASE_URL.`;
    }
    if (has('3D000')) {
      return `the database "${database}" does not exist on ${where}. Create it (createdb -h ${url.hostname} -p ${url.port || 5432} ${database}) and run \`npm run db:migrate\`, or fix DATABASE_URL.`;
    }
    if (has('28P01', '28000')) {
      return `PostgreSQL at ${where} refused the login of "${decodeURIComponent(url.username)}". Fix the user and password in DATABASE_URL.`;
    }
    if (has('55000', '57P03', '53300')) {
      return `PostgreSQL at ${where} does not accept connections to "${database}" right now (${has('55000', '57P03', '53300')}). Retry when it does, or fix DATABASE_URL.`;
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  return `${message.split('\n')[0]} (run with LOG_LEVEL=debug for the details).`;
}
