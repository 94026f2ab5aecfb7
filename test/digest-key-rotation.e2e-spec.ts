import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Digest, digestHash, keyIdOf } from '../src/audit/digests/audit-digest';
import { createTestDatabase, type TestDatabase } from './database';
import { ResourceFactory } from './factories';
import { createTestApp, createWorkspace } from './test-app';

/** One app after the other on one database: a restart with a new AUDIT_SIGNING_KEY. */
describe('Signing key rotation', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database.drop());

  it('publishes the new key next to the old one; digests signed by either still verify', async () => {
    const before = await createTestApp(
      { auditSigningKeyFile: join(mkdtempSync(join(tmpdir(), 'audit-rotation-')), 'key.pem') },
      {},
      database.url,
    );
    const ws = await createWorkspace(before.app, 'Rotation');
    await new ResourceFactory(before.http, ws.workspaceId, ws.admin.auth).create('sources');
    const base = `/api/workspaces/${ws.workspaceId}/audit-logs`;
    const old = (await before.http.post(`${base}/digests`).set(ws.admin.auth).expect(201)).body as Digest;
    await before.app.close();

    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const after = await createTestApp({ auditSigningKey: pem }, {}, database.url);
    try {
      const { keys } = (await after.http.get('/api/audit-logs/public-keys').expect(200)).body as {
        keys: { keyId: string }[];
      };
      const newKeyId = keyIdOf(createPublicKey(pem));
      expect(keys.map((k) => k.keyId)).toEqual([old.keyId, newKeyId]);
      await new ResourceFactory(after.http, ws.workspaceId, ws.admin.auth).create('sources');
      const fresh = (await after.http.post(`${base}/digests`).set(ws.admin.auth).expect(201)).body as Digest;
      expect(fresh).toMatchObject({ keyId: newKeyId, previousDigestHash: digestHash(old) });
      for (const digest of [old, fresh]) {
        const res = await after.http.post(`${base}/verify`).set(ws.admin.auth).send({ digest }).expect(200);
        expect(res.body).toMatchObject({ intact: true, extendsDigest: true });
      }
    } finally {
      await after.app.close();
    }
  });
});
