import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { APP_CONFIG, type AppConfig, ConfigError } from '../../config/app-config';
import { type AppPrismaClient, PRISMA } from '../../database/prisma-client.factory';
import { keyIdOf } from './audit-digest';

export interface PublishedKey {
  keyId: string;
  publicKey: string;
  createdAt: Date;
}

/** A new Ed25519 private key in PEM: what the digest key file holds. */
function newSigningKeyPem(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * Creates the key file (mode 0600) with a new key (`content`; an Ed25519 PEM by default) unless it
 * exists; safe against another process doing the same at once (the file appears whole, by a hard
 * link, or not at all). Returns whether it created it.
 */
export function createKeyFile(path: string, content: () => string = newSigningKeyPem): boolean {
  if (existsSync(path)) return false;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(temporary, content(), { mode: 0o600, flag: 'wx' });
  chmodSync(temporary, 0o600);
  try {
    linkSync(temporary, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    unlinkSync(temporary);
  }
}

/**
 * The private key that signs digests. It is read from AUDIT_SIGNING_KEY or from the key file, never
 * from or into the database; only its public half is published there (`audit_signing_keys`), next
 * to every key used before it, so that digests signed before a rotation still verify.
 */
@Injectable()
export class AuditSigningKeyService implements OnModuleInit {
  private readonly logger = new Logger('AuditSigningKey');
  private key?: { privateKey: KeyObject; keyId: string; publicKey: string };

  constructor(
    @Inject(PRISMA) private readonly prisma: AppPrismaClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    const privateKey = this.load();
    const keyId = keyIdOf(privateKey);
    const publicKey = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
    await this.prisma.$executeRaw`
      INSERT INTO "audit_signing_keys" ("key_id", "public_key") VALUES (${keyId}, ${publicKey})
      ON CONFLICT ("key_id") DO NOTHING`;
    this.key = { privateKey, keyId, publicKey };
  }

  private load(): KeyObject {
    if (this.config.auditSigningKey) return createPrivateKey(this.config.auditSigningKey);
    const path = resolve(this.config.auditSigningKeyFile);
    if (createKeyFile(path)) {
      this.logger.log(
        `Created the audit signing key ${path} (mode 0600). It signs audit digests: keep it, and a copy, out of the database; set AUDIT_SIGNING_KEY in production.`,
      );
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new ConfigError(`The audit signing key file ${path} cannot be used: ${(error as Error).message}.`);
    }
    if (key.asymmetricKeyType !== 'ed25519') {
      throw new ConfigError(`The audit signing key file ${path} holds a ${key.asymmetricKeyType} key, not Ed25519.`);
    }
    if ((statSync(path).mode & 0o077) !== 0) {
      this.logger.warn(`The audit signing key file ${path} can be read by other users: chmod 600 it.`);
    }
    return key;
  }

  /** The key this instance signs with. */
  current(): { privateKey: KeyObject; keyId: string; publicKey: string } {
    if (!this.key) throw new Error('the audit signing key is not loaded yet');
    return this.key;
  }

  /** Every published public key, oldest first (rotated keys stay). */
  async published(): Promise<PublishedKey[]> {
    const rows = await this.prisma.$queryRaw<{ key_id: string; public_key: string; created_at: Date }[]>`
      SELECT "key_id", "public_key", "created_at" FROM "audit_signing_keys" ORDER BY "created_at", "key_id"`;
    return rows.map((r) => ({ keyId: r.key_id, publicKey: r.public_key, createdAt: r.created_at }));
  }

  async publicKey(keyId: string): Promise<KeyObject | undefined> {
    const [row] = await this.prisma.$queryRaw<{ public_key: string }[]>`
      SELECT "public_key" FROM "audit_signing_keys" WHERE "key_id" = ${keyId}`;
    return row ? createPublicKey(row.public_key) : undefined;
  }
}
