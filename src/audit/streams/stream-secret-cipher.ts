import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { APP_CONFIG, type AppConfig, ConfigError } from '../../config/app-config';
import { createKeyFile } from '../digests/audit-signing-key.service';

const VERSION = 'v1';
const KEY_HEX = /^[0-9a-f]{64}$/;

/** The first 16 hex characters of the key's sha256: names the key a ciphertext was made with. */
export function streamKeyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/**
 * Encrypts stream secrets at rest (AES-256-GCM) with a key kept outside the database, as the digest
 * signing key is: AUDIT_STREAMS_KEY, or a key file created on first start. The secret has to be read
 * back to sign each batch, so it cannot be hashed; a copy of the database alone does not reveal it.
 * The stream's id is bound in as associated data, so a ciphertext moved to another stream fails.
 */
@Injectable()
export class StreamSecretCipher implements OnModuleInit {
  private readonly logger = new Logger('AuditStreams');
  private key?: { bytes: Buffer; id: string };

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  onModuleInit(): void {
    const bytes = Buffer.from(this.config.auditStreamsKey ?? this.fromFile(), 'hex');
    this.key = { bytes, id: streamKeyId(bytes) };
  }

  private fromFile(): string {
    const path = resolve(this.config.auditStreamsKeyFile);
    if (createKeyFile(path, () => `${randomBytes(32).toString('hex')}\n`)) {
      this.logger.log(
        `Created the stream secret key ${path} (mode 0600). It encrypts log stream secrets: keep it out of the database, give every instance the same one, or set AUDIT_STREAMS_KEY.`,
      );
    }
    let text: string;
    try {
      text = readFileSync(path, 'utf8').trim();
    } catch (error) {
      throw new ConfigError(`The stream secret key file ${path} cannot be read: ${(error as Error).message}.`);
    }
    if (!KEY_HEX.test(text)) {
      throw new ConfigError(`The stream secret key file ${path} must hold 64 lowercase hexadecimal characters.`);
    }
    if ((statSync(path).mode & 0o077) !== 0) {
      this.logger.warn(`The stream secret key file ${path} can be read by other users: chmod 600 it.`);
    }
    return text;
  }

  private current(): { bytes: Buffer; id: string } {
    if (!this.key) throw new Error('the stream secret key is not loaded yet');
    return this.key;
  }

  encrypt(secret: string, streamId: string): string {
    const key = this.current();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.bytes, iv).setAAD(Buffer.from(streamId));
    const data = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return [VERSION, key.id, iv, cipher.getAuthTag(), data]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join('.');
  }

  /** The secret, or an error whose message says why it cannot be read (never the secret itself). */
  decrypt(stored: string, streamId: string): string {
    const key = this.current();
    const [version, keyId, iv, tag, data] = stored.split('.');
    if (version !== VERSION || !data) throw new Error('the stored secret is not in a known format');
    if (keyId !== key.id) {
      throw new Error(
        `the stream's secret was encrypted with key ${keyId}, but this instance has key ${key.id}: give every instance the same AUDIT_STREAMS_KEY, or re-create the stream`,
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.bytes, Buffer.from(iv, 'base64url'))
        .setAAD(Buffer.from(streamId))
        .setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new Error("the stream's stored secret does not decrypt with this instance's key: re-create the stream");
    }
  }
}
