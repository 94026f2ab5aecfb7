import { compact, deleteAt, formatPath, type JsonValue, overlaps, parsePath, setAt } from './change-path';

describe('change paths', () => {
  it.each([
    ['name', ['name']],
    ['config.host', ['config', 'host']],
    ['definition.rules[0].value', ['definition', 'rules', 0, 'value']],
    ['segmentIds[12]', ['segmentIds', 12]],
    ['config["a.b"]', ['config', 'a.b']],
    ['config["x[0]"]', ['config', 'x[0]']],
    ['headers[""]', ['headers', '']],
    ['config["say \\"hi\\""]', ['config', 'say "hi"']],
    ['config["back\\\\slash"].x', ['config', 'back\\slash', 'x']],
    ['config["\\u00e9t\\u00e9"]', ['config', 'été']],
    ['config["]"]["[\\"]"][3][4]', ['config', ']', '["]', 3, 4]],
    ['config["1a"]._b', ['config', '1a', '_b']],
  ])('parses %s', (path, segments) => {
    expect(parsePath(path)).toEqual(segments);
    expect(parsePath(formatPath(segments))).toEqual(segments);
  });

  it('writes paths as the capture does: identifiers with a dot, other keys quoted, indexes in brackets', () => {
    expect(formatPath(['config', 'a.b', 0, 'host'])).toBe('config["a.b"][0].host');
    expect(formatPath(['headers', ''])).toBe('headers[""]');
    expect(formatPath(['config', 'say "hi"'])).toBe('config["say \\"hi\\""]');
  });

  it.each([
    '',
    '.name',
    '1abc',
    'config.',
    'config..a',
    'config[01]',
    'config[-1]',
    'config["open',
    'config["a"',
    'config[x]',
    'config.a b',
    'config["\\q"]',
  ])('refuses %j', (path) => {
    expect(() => parsePath(path)).toThrow(/PathSyntaxError|field name|expected|unterminated|invalid|unexpected/);
  });

  it('tells whether two paths touch the same part of a document', () => {
    expect(overlaps(['config', 'host'], ['config', 'host'])).toBe(true);
    expect(overlaps(['config'], ['config', 'host'])).toBe(true);
    expect(overlaps(['config', 'host', 0], ['config', 'host'])).toBe(true);
    expect(overlaps(['config', 'host'], ['config', 'port'])).toBe(false);
    expect(overlaps(['rules', 0], ['rules', 1])).toBe(false);
    expect(overlaps(['a', '0'], ['a', 0])).toBe(false);
  });

  it('rebuilds a document from leaves: sets create containers, deletes leave holes that compact closes', () => {
    const root: { [key: string]: JsonValue } = { config: { a: 1, list: ['x', 'y', 'z'] } };
    setAt(root, ['config', 'nested', 'deep', 0, 'k'], true);
    setAt(root, ['config', 'a'], 2);
    deleteAt(root, ['config', 'list', 1]);
    deleteAt(root, ['config', 'missing', 'path']);
    setAt(root, ['config', 'empty'], {});
    setAt(root, ['config', 'a.b'], 'quoted');
    expect(compact(root.config)).toEqual({
      a: 2,
      list: ['x', 'z'],
      nested: { deep: [{ k: true }] },
      empty: {},
      'a.b': 'quoted',
    });
  });

  it('removes the containers that an undone change added, but never the top-level field', () => {
    const root: { [key: string]: JsonValue } = {
      definition: { rules: [{ field: 'ltv' }, { field: 'country', op: 'eq' }], extra: { deep: { x: 1 } } },
    };
    deleteAt(root, ['definition', 'rules', 1, 'field']);
    deleteAt(root, ['definition', 'rules', 1, 'op']);
    deleteAt(root, ['definition', 'extra', 'deep', 'x']);
    expect(compact(root.definition)).toEqual({ rules: [{ field: 'ltv' }] });
    const only: { [key: string]: JsonValue } = { config: { a: 1 } };
    deleteAt(only, ['config', 'a']);
    expect(only).toEqual({ config: {} });
  });

  it('replaces a leaf by a container when a deeper leaf is set under it', () => {
    const root: { [key: string]: JsonValue } = { config: { host: 'a' } };
    deleteAt(root, ['config', 'host']);
    setAt(root, ['config', 'host', 'name'], 'b');
    setAt(root, ['config', 'ports', 1], 2);
    expect(compact(root.config)).toEqual({ host: { name: 'b' }, ports: [2] });
  });
});
