import { ResourceFactory, type ResourcePath } from './factories';
import { createTestApp, createWorkspace, type TestApp, type TestWorkspace } from './test-app';

const SECRETS = ['pw-source-secret', 'braze-api-secret', 'rotated-secret'];
const PATHS: ResourcePath[] = ['sources', 'models', 'segments', 'destinations'];
const FIELDS: Record<ResourcePath, string[]> = {
  sources: ['type', 'config'],
  models: ['sourceId', 'sql'],
  segments: ['modelId', 'definition'],
  destinations: ['type', 'config', 'enabled', 'segmentIds'],
};

describe('Resource API', () => {
  let t: TestApp;
  let ws: TestWorkspace;
  let other: TestWorkspace;
  let admin: ResourceFactory;
  let otherAdmin: ResourceFactory;
  const bodies: string[] = [];

  beforeAll(async () => {
    t = await createTestApp();
    ws = await createWorkspace(t.app, 'Acme');
    other = await createWorkspace(t.app, 'Globex');
    admin = new ResourceFactory(t.http, ws.workspaceId, ws.admin.auth);
    otherAdmin = new ResourceFactory(t.http, other.workspaceId, other.admin.auth);
  });
  afterAll(async () => {
    const hashes = (await t.prisma.apiToken.findMany({ select: { tokenHash: true } })).map((r) => r.tokenHash);
    const all = bodies.join('\n');
    for (const secret of [...SECRETS, ...hashes]) expect(all).not.toContain(secret);
    expect(bodies.length).toBeGreaterThan(50);
    await t.close();
  });
  /** Keeps a response body, to check at the end that none ever carried a secret or a token hash. */
  const keep = <T extends { text: string }>(res: T): T => {
    bodies.push(res.text);
    return res;
  };

  describe.each(PATHS)('/%s', (path) => {
    it('POST creates (201) with creator and last editor, secrets masked', async () => {
      const body = await admin.body(path);
      const res = keep(await t.http.post(admin.url(path)).set(ws.admin.auth).send(body).expect(201));
      const user = { id: ws.admin.id, name: expect.any(String), email: expect.stringContaining('@') };
      expect(res.body).toMatchObject({ id: expect.any(String), name: body.name, createdBy: user, updatedBy: user });
      expect(res.body.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      for (const field of FIELDS[path]) expect(res.body).toHaveProperty(field);
      if ('config' in body) expect(JSON.stringify(res.body.config)).toContain('"********"');
    });

    it('GET lists newest first and GET :id returns one', async () => {
      const first = await admin.create(path);
      const second = await admin.create(path);
      const list = keep(await t.http.get(admin.url(path)).set(ws.member.auth).expect(200));
      const ids = list.body.items.map((item: { id: string }) => item.id);
      expect(ids.indexOf(second.id)).toBeLessThan(ids.indexOf(first.id));
      const one = keep(await t.http.get(admin.url(path, first.id)).set(ws.member.auth).expect(200));
      expect(one.body).toEqual(first);
    });

    it('PATCH changes a subset, records the member as last editor, never the creator', async () => {
      const created = await admin.create(path);
      const res = keep(
        await t.http
          .patch(admin.url(path, created.id))
          .set(ws.member.auth)
          .send({ name: `  Renamed ${created.name}  ` })
          .expect(200),
      );
      expect(res.body.name).toBe(`Renamed ${created.name}`);
      expect(res.body.createdBy.id).toBe(ws.admin.id);
      expect(res.body.updatedBy.id).toBe(ws.member.id);
      expect(new Date(res.body.updatedAt).getTime()).toBeGreaterThanOrEqual(new Date(created.updatedAt).getTime());
    });

    it('DELETE answers 204, after which the resource is gone', async () => {
      const created = await admin.create(path);
      await t.http.delete(admin.url(path, created.id)).set(ws.member.auth).expect(204);
      await t.http.get(admin.url(path, created.id)).set(ws.member.auth).expect(404);
    });

    it('answers 404 for an unknown id or one of another workspace, 400 for a malformed one', async () => {
      const foreign = await otherAdmin.create(path);
      for (const method of ['get', 'patch', 'delete'] as const) {
        await t.http[method](admin.url(path, foreign.id)).set(ws.admin.auth).send({}).expect(404);
        await t.http[method](admin.url(path, '3b241101-e2bb-4255-8caf-4136c566a962'))
          .set(ws.admin.auth)
          .send({})
          .expect(404);
        const bad = keep(await t.http[method](admin.url(path, 'nope')).set(ws.admin.auth).send({}).expect(400));
        expect(bad.body.message).toMatch(/id must be a UUID/);
      }
      const untouched = keep(await t.http.get(otherAdmin.url(path, foreign.id)).set(other.admin.auth).expect(200));
      expect(untouched.body).toEqual(foreign);
    });

    it('answers 401 without a token and 404 in a workspace the caller does not belong to', async () => {
      await t.http.get(admin.url(path)).expect(401);
      await t.http
        .post(admin.url(path))
        .send(await admin.body(path))
        .expect(401);
      await t.http.get(admin.url(path)).set(other.admin.auth).expect(404);
      await t.http
        .post(admin.url(path))
        .set(other.admin.auth)
        .send(await admin.body(path))
        .expect(404);
    });

    it.each([
      ['a missing field', (b: Record<string, unknown>) => ({ ...b, name: undefined }), /name/],
      ['a wrong type', (b: Record<string, unknown>) => ({ ...b, name: 42 }), /name must be a string/],
      [
        'an unknown property',
        (b: Record<string, unknown>) => ({ ...b, color: 'red' }),
        /property color should not exist/,
      ],
      ['a too-long name', (b: Record<string, unknown>) => ({ ...b, name: 'x'.repeat(201) }), /1 to 200 characters/],
      ['a blank name', (b: Record<string, unknown>) => ({ ...b, name: '   ' }), /1 to 200 characters/],
    ])('answers 400 for %s, saying what is accepted', async (_case, mutate, message) => {
      const res = keep(
        await t.http
          .post(admin.url(path))
          .set(ws.admin.auth)
          .send(mutate(await admin.body(path)))
          .expect(400),
      );
      expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(JSON.stringify(res.body.message)).toMatch(message);
    });

    it('answers 400 for a field sent as null, on create and on update, and changes nothing', async () => {
      const existing = await admin.create(path);
      for (const field of ['name', ...FIELDS[path]]) {
        const created = keep(
          await t.http
            .post(admin.url(path))
            .set(ws.admin.auth)
            .send({ ...(await admin.body(path)), [field]: null }),
        );
        expect([field, created.status, created.body]).toEqual([
          field,
          400,
          expect.objectContaining({ statusCode: 400, error: 'Bad Request' }),
        ]);
        expect(JSON.stringify(created.body.message)).toContain(field);
        const updated = keep(
          await t.http
            .patch(admin.url(path, existing.id))
            .set(ws.admin.auth)
            .send({ [field]: null }),
        );
        expect([field, updated.status]).toEqual([field, 400]);
        expect(JSON.stringify(updated.body.message)).toContain(field);
      }
      const after = keep(await t.http.get(admin.url(path, existing.id)).set(ws.admin.auth).expect(200));
      expect(after.body).toEqual(existing);
    });

    it('answers 409 for a duplicate name, on create and on rename', async () => {
      const a = await admin.create(path);
      const b = await admin.create(path);
      const dup = keep(
        await t.http
          .post(admin.url(path))
          .set(ws.admin.auth)
          .send({ ...(await admin.body(path)), name: a.name })
          .expect(409),
      );
      expect(dup.body.message).toContain(a.name);
      await t.http.patch(admin.url(path, b.id)).set(ws.admin.auth).send({ name: a.name }).expect(409);
      // The same name is fine in another workspace.
      await otherAdmin.create(path, { name: a.name });
    });

    it('POST bulk-delete deletes the listed ids of this workspace only', async () => {
      const [a, b] = [await admin.create(path), await admin.create(path)];
      const foreign = await otherAdmin.create(path);
      const res = keep(
        await t.http
          .post(`${admin.url(path)}/bulk-delete`)
          .set(ws.admin.auth)
          .send({ ids: [a.id, b.id, foreign.id] })
          .expect(200),
      );
      expect(res.body).toEqual({ deleted: 2 });
      await t.http.get(otherAdmin.url(path, foreign.id)).set(other.admin.auth).expect(200);
    });

    it.each([
      ['no ids', { ids: [] }, /ids must contain at least 1 elements/],
      [
        'too many ids',
        { ids: Array.from({ length: 501 }, () => '3b241101-e2bb-4255-8caf-4136c566a962') },
        /ids must contain no more than 500 elements/,
      ],
      ['a malformed id', { ids: ['x'] }, /each value in ids must be a UUID/],
      ['no body', {}, /ids/],
    ])('bulk-delete answers 400 for %s', async (_case, body, message) => {
      const res = keep(
        await t.http
          .post(`${admin.url(path)}/bulk-delete`)
          .set(ws.admin.auth)
          .send(body)
          .expect(400),
      );
      expect(JSON.stringify(res.body.message)).toMatch(message);
    });
  });

  describe('references and dependents', () => {
    it('refuses a reference to a resource of another workspace, or a malformed one (400)', async () => {
      const foreignSource = await otherAdmin.create('sources');
      const res = keep(
        await t.http
          .post(admin.url('models'))
          .set(ws.admin.auth)
          .send({ name: 'M', sourceId: foreignSource.id, sql: 'SELECT 1' })
          .expect(400),
      );
      expect(res.body.message).toMatch(/sourceId: no source .* in this workspace/);
      const bad = keep(
        await t.http
          .post(admin.url('models'))
          .set(ws.admin.auth)
          .send({ name: 'M', sourceId: 'x', sql: 'SELECT 1' })
          .expect(400),
      );
      expect(JSON.stringify(bad.body.message)).toMatch(/sourceId must be a UUID/);
      const foreignSegment = await otherAdmin.create('segments');
      await t.http
        .post(admin.url('destinations'))
        .set(ws.admin.auth)
        .send({ name: 'D', type: 'x', config: {}, segmentIds: [foreignSegment.id] })
        .expect(400);
    });

    it('takes a reference written in upper case as the same id, and returns and stores it in lower case', async () => {
      const source = await admin.create('sources');
      const model = keep(
        await t.http
          .post(admin.url('models'))
          .set(ws.admin.auth)
          .send({ name: 'Upper', sourceId: source.id.toUpperCase(), sql: 'SELECT 1' }),
      );
      expect([model.status, model.body.sourceId]).toEqual([201, source.id]);
      const segment = await admin.create('segments');
      const destination = keep(
        await t.http
          .post(admin.url('destinations'))
          .set(ws.admin.auth)
          .send({ name: 'Upper', type: 'x', config: {}, segmentIds: [segment.id.toUpperCase()] }),
      );
      expect([destination.status, destination.body.segmentIds]).toEqual([201, [segment.id]]);
      const twice = keep(
        await t.http
          .post(admin.url('destinations'))
          .set(ws.admin.auth)
          .send({ name: 'Twice', type: 'x', config: {}, segmentIds: [segment.id, segment.id.toUpperCase()] })
          .expect(400),
      );
      expect(JSON.stringify(twice.body.message)).toMatch(/segmentIds must not repeat an id/);
      // The segment is in use: deleting it is refused, as for the same id in lower case.
      await t.http.delete(admin.url('segments', segment.id)).set(ws.admin.auth).expect(409);
      const unchanged = keep(
        await t.http
          .patch(admin.url('destinations', destination.body.id))
          .set(ws.admin.auth)
          .send({ segmentIds: [segment.id.toUpperCase()] })
          .expect(200),
      );
      expect(unchanged.body.updatedAt).toBe(destination.body.updatedAt);
    });

    it.each([
      ['sources', 'models'],
      ['models', 'segments'],
      ['segments', 'destinations'],
    ] as const)(
      'refuses to delete %s used by %s (409 naming them), changing nothing',
      async (parentPath, childPath) => {
        const child = await admin.create(childPath);
        const parentId =
          childPath === 'models' ? child.sourceId! : childPath === 'segments' ? child.modelId! : child.segmentIds![0];
        const res = keep(await t.http.delete(admin.url(parentPath, parentId)).set(ws.admin.auth).expect(409));
        expect(res.body.message).toContain(JSON.stringify(child.name));
        const bulk = keep(
          await t.http
            .post(`${admin.url(parentPath)}/bulk-delete`)
            .set(ws.admin.auth)
            .send({ ids: [parentId] })
            .expect(409),
        );
        expect(bulk.body.message).toContain(child.name);
        await t.http.get(admin.url(parentPath, parentId)).set(ws.admin.auth).expect(200);
      },
    );
  });

  describe('secrets', () => {
    it('keeps a stored secret when "********" is sent back, and replaces it when a new value is sent', async () => {
      const created = await admin.create('sources');
      const kept = keep(
        await t.http
          .patch(admin.url('sources', created.id))
          .set(ws.admin.auth)
          .send({ config: { host: 'new.acme.test', password: '********' } })
          .expect(200),
      );
      expect(kept.body.config).toEqual({ host: 'new.acme.test', password: '********' });
      let row = await t.prisma.source.findUniqueOrThrow({ where: { id: created.id } });
      expect(row.config).toEqual({ host: 'new.acme.test', password: 'pw-source-secret' });
      keep(
        await t.http
          .patch(admin.url('sources', created.id))
          .set(ws.admin.auth)
          .send({ config: { host: 'new.acme.test', password: 'rotated-secret' } })
          .expect(200),
      );
      row = await t.prisma.source.findUniqueOrThrow({ where: { id: created.id } });
      expect(row.config).toEqual({ host: 'new.acme.test', password: 'rotated-secret' });
    });

    it('masks nested secrets, a secret object whole, and refuses "********" where nothing is stored', async () => {
      const created = await admin.create('destinations', {
        config: {
          braze: { clientSecret: 'braze-api-secret', user: 'u', dsn: 'x' },
          auth: { user: 'u' },
          url: 'postgres://u:pw@db.acme.test/x',
          headers: [
            { name: 'Authorization', value: 'Bearer t' },
            { name: 'Accept', value: 'json' },
          ],
        },
      });
      expect(created.config).toEqual({
        braze: { clientSecret: '********', user: 'u', dsn: '********' },
        auth: '********',
        url: 'postgres://u:********@db.acme.test/x',
        headers: [
          { name: 'Authorization', value: '********' },
          { name: 'Accept', value: 'json' },
        ],
      });
      const res = keep(
        await t.http
          .patch(admin.url('destinations', created.id))
          .set(ws.admin.auth)
          .send({ config: { token: '********' } })
          .expect(400),
      );
      expect(res.body.message).toMatch(/config.token is "\*\*\*\*\*\*\*\*"/);
    });
  });

  describe('PATCH /destinations/bulk', () => {
    it('enables or disables the listed destinations, counting those it changed', async () => {
      const [a, b] = [await admin.create('destinations'), await admin.create('destinations', { enabled: false })];
      const res = keep(
        await t.http
          .patch(`${admin.url('destinations')}/bulk`)
          .set(ws.admin.auth)
          .send({ ids: [a.id, b.id], enabled: false })
          .expect(200),
      );
      expect(res.body).toEqual({ updated: 1 });
      const after = keep(await t.http.get(admin.url('destinations', a.id)).set(ws.admin.auth).expect(200));
      expect(after.body.enabled).toBe(false);
    });

    it('answers 400 without a boolean', async () => {
      const res = keep(
        await t.http
          .patch(`${admin.url('destinations')}/bulk`)
          .set(ws.admin.auth)
          .send({ ids: [] })
          .expect(400),
      );
      expect(JSON.stringify(res.body.message)).toMatch(/enabled must be a boolean/);
    });
  });
});
