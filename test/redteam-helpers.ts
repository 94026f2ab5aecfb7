import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { withAdminClient } from './database';

/** A login role of its own, dropped by `drop()`; `grants` run as the superuser in `databaseUrl`. */
export async function createLoginRole(
  prefix: string,
  options: { inRole?: string; databaseUrl?: string; grants?: (name: string) => string[] } = {},
): Promise<{ name: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await withAdminClient((c) =>
    c.query(`CREATE ROLE "${name}" LOGIN${options.inRole ? ` IN ROLE "${options.inRole}"` : ''}`),
  );
  if (options.grants && options.databaseUrl) {
    const su = new Client({ connectionString: options.databaseUrl });
    await su.connect();
    try {
      for (const sql of options.grants(name)) await su.query(sql);
    } finally {
      await su.end();
    }
  }
  return {
    name,
    drop: async () => {
      if (options.grants && options.databaseUrl) {
        const su = new Client({ connectionString: options.databaseUrl });
        await su.connect();
        await su.query(`DROP OWNED BY "${name}"`).catch(() => undefined);
        await su.end();
      }
      await withAdminClient((c) => c.query(`DROP ROLE IF EXISTS "${name}"`)).catch(() => undefined);
    },
  };
}

export function asRole(url: string, user: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = '';
  return parsed.toString();
}

export async function connect(url: string): Promise<Client> {
  const client = new Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** The trailing comment the application's Prisma client adds, for any context. */
export function auditComment(context: Record<string, unknown>): string {
  return `/*audit='${Buffer.from(JSON.stringify(context)).toString('base64url')}'*/`;
}

/** `n` random alphanumeric characters (incompressible for pglz). */
export function randomText(n: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(n);
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[bytes[i] % alphabet.length];
  return out;
}
