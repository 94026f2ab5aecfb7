import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AppConfig, loadConfig } from '../../config/app-config';
import { StreamSecretCipher } from './stream-secret-cipher';

function cipher(overrides: Partial<AppConfig>): StreamSecretCipher {
  const c = new StreamSecretCipher({ ...loadConfig({}), ...overrides });
  c.onModuleInit();
  return c;
}

describe('StreamSecretCipher', () => {
  const secret = 'a-stream-secret-of-some-length';
  const id = randomUUID();

  it('reads back what it encrypted, and the ciphertext does not contain the secret', () => {
    const c = cipher({ auditStreamsKey: randomBytes(32).toString('hex') });
    const stored = c.encrypt(secret, id);
    expect(stored).toMatch(/^v1\.[0-9a-f]{16}\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(stored).not.toContain(secret);
    expect(c.encrypt(secret, id)).not.toBe(stored); // a fresh IV each time
    expect(c.decrypt(stored, id)).toBe(secret);
  });

  it('refuses a ciphertext moved to another stream, altered, or made with another key, never echoing the secret', () => {
    const c = cipher({ auditStreamsKey: randomBytes(32).toString('hex') });
    const stored = c.encrypt(secret, id);
    expect(() => c.decrypt(stored, randomUUID())).toThrow(/does not decrypt/);
    const [v, k, iv, tag, data] = stored.split('.');
    const flipped = `${data.slice(0, -2)}${data.endsWith('AA') ? 'AB' : 'AA'}`;
    expect(() => c.decrypt([v, k, iv, tag, flipped].join('.'), id)).toThrow(/does not decrypt/);
    const other = cipher({ auditStreamsKey: randomBytes(32).toString('hex') });
    expect(() => other.decrypt(stored, id)).toThrow(/encrypted with key [0-9a-f]{16}, but this instance has key/);
    for (const attempt of [() => c.decrypt(stored, randomUUID()), () => other.decrypt(stored, id)]) {
      expect(attempt).toThrow(expect.objectContaining({ message: expect.not.stringContaining(secret) }));
    }
  });

  it('creates its key file (mode 0600) on first start and reuses it', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'stream-key-')), 'nested', 'streams.key');
    const first = cipher({ auditStreamsKeyFile: file });
    expect(readFileSync(file, 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(cipher({ auditStreamsKeyFile: file }).decrypt(first.encrypt(secret, id), id)).toBe(secret);
  });
});
