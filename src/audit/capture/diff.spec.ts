import { diffRows, flatten, REDACTED } from './diff';

const FIELDS = ['name', 'config', 'definition', 'segmentIds', 'enabled'];

describe('flatten', () => {
  it('gives leaf paths for nested objects and arrays, keeping empty containers as leaves', () => {
    const leaves = flatten(
      { name: 'A', definition: { rules: [{ value: 1 }, { value: [] }], meta: {} }, segmentIds: [] },
      FIELDS,
      [],
    );
    expect([...leaves.entries()].map(([path, leaf]) => [path, leaf.value])).toEqual([
      ['name', 'A'],
      ['definition.rules[0].value', 1],
      ['definition.rules[1].value', []],
      ['definition.meta', {}],
      ['segmentIds', []],
    ]);
  });

  it('marks as secret every leaf under a secret-looking key of a secret field, at any depth', () => {
    const leaves = flatten(
      { config: { host: 'h', password: 'p', auth: { apiKey: 'k', credentials: { user: 'u' } }, tokens: ['t1'] } },
      FIELDS,
      ['config'],
    );
    const secret = [...leaves.entries()].filter(([, leaf]) => leaf.secret).map(([path]) => path);
    expect(secret).toEqual([
      'config.password',
      'config.auth.apiKey',
      'config.auth.credentials.user',
      'config.tokens[0]',
    ]);
  });

  it('does not treat keys of non-secret fields as secrets', () => {
    const leaves = flatten({ definition: { key: 'country' } }, FIELDS, ['config']);
    expect(leaves.get('definition.key')).toEqual({ value: 'country', secret: false });
  });
});

describe('diffRows', () => {
  it('lists one change per changed leaf for an update', () => {
    const before = { name: 'A', definition: { rules: [{ field: 'ltv', value: 100 }] }, enabled: true };
    const after = {
      name: 'A',
      definition: {
        rules: [
          { field: 'ltv', value: 250 },
          { field: 'x', value: 1 },
        ],
      },
      enabled: false,
    };
    expect(diffRows(before, after, FIELDS, [])).toEqual([
      { field: 'definition.rules[0].value', before: 100, after: 250 },
      { field: 'enabled', before: true, after: false },
      { field: 'definition.rules[1].field', after: 'x' },
      { field: 'definition.rules[1].value', after: 1 },
    ]);
  });

  it('records a changed secret as changed, with both values redacted', () => {
    const changes = diffRows({ config: { password: 'old' } }, { config: { password: 'new' } }, FIELDS, ['config']);
    expect(changes).toEqual([{ field: 'config.password', before: REDACTED, after: REDACTED }]);
    expect(diffRows({ config: { password: 'same' } }, { config: { password: 'same' } }, FIELDS, ['config'])).toEqual(
      [],
    );
  });

  it('lists every field without `before` for a creation and without `after` for a deletion', () => {
    const row = { name: 'S', config: { host: 'h', secret: 's' } };
    expect(diffRows(undefined, row, FIELDS, ['config'])).toEqual([
      { field: 'name', after: 'S' },
      { field: 'config.host', after: 'h' },
      { field: 'config.secret', after: REDACTED },
    ]);
    expect(diffRows(row, undefined, FIELDS, ['config'])).toEqual([
      { field: 'name', before: 'S' },
      { field: 'config.host', before: 'h' },
      { field: 'config.secret', before: REDACTED },
    ]);
  });

  it('sees a type change of a leaf, and an object replaced by an empty one', () => {
    expect(diffRows({ definition: { v: 1 } }, { definition: { v: '1' } }, FIELDS, [])).toEqual([
      { field: 'definition.v', before: 1, after: '1' },
    ]);
    expect(diffRows({ definition: { v: 1 } }, { definition: {} }, FIELDS, [])).toEqual([
      { field: 'definition.v', before: 1 },
      { field: 'definition', after: {} },
    ]);
  });
});
