import { PrismaPg } from '@prisma/adapter-pg';
import { Pool } from 'pg';
import { PrismaClient } from '../src/generated/prisma/client';

/**
 * A Prisma client with no extension at all, on the same database: the baseline for "behaves
 * exactly like plain Prisma" (same results, same errors).
 */
export async function withPlainPrisma<T>(url: string, fn: (prisma: PrismaClient) => Promise<T>): Promise<T> {
  const pool = new Pool({ connectionString: url, max: 2 });
  pool.on('error', () => undefined);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  try {
    return await fn(prisma);
  } finally {
    await prisma.$disconnect();
    await pool.end();
  }
}
