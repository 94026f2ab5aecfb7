/**
 * The paths of `changes[].field`, as the capture writes them: a top-level field name, then `.key` for
 * an identifier key, `["…"]` (JSON string escaping) for any other key, `[n]` for an array element.
 * `parsePath` reads one back into its segments; `setAt`/`deleteAt` apply one leaf to a document.
 */
export type PathSegment = string | number;

/** A JSON value while a document is being rebuilt; arrays may hold holes until `compact`. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*/;

export class PathSyntaxError extends Error {
  override name = 'PathSyntaxError';
}

export function parsePath(path: string): PathSegment[] {
  const top = IDENTIFIER.exec(path);
  if (!top) throw new PathSyntaxError(`${JSON.stringify(path)} does not start with a field name`);
  const segments: PathSegment[] = [top[0]];
  let i = top[0].length;
  while (i < path.length) {
    const rest = path.slice(i);
    if (rest.startsWith('.')) {
      const key = IDENTIFIER.exec(rest.slice(1));
      if (!key) throw new PathSyntaxError(`${JSON.stringify(path)}: expected a key after "." at ${i}`);
      segments.push(key[0]);
      i += 1 + key[0].length;
    } else if (rest.startsWith('["')) {
      // A JSON string: up to the first quote that no backslash escapes.
      let end = 2;
      while (end < rest.length && rest[end] !== '"') end += rest[end] === '\\' ? 2 : 1;
      if (end >= rest.length || rest[end + 1] !== ']') {
        throw new PathSyntaxError(`${JSON.stringify(path)}: unterminated ["…"] at ${i}`);
      }
      let key: unknown;
      try {
        key = JSON.parse(rest.slice(1, end + 1));
      } catch {
        throw new PathSyntaxError(`${JSON.stringify(path)}: invalid JSON string at ${i}`);
      }
      segments.push(key as string);
      i += end + 2;
    } else {
      const index = /^\[(0|[1-9][0-9]*)\]/.exec(rest);
      if (!index) throw new PathSyntaxError(`${JSON.stringify(path)}: unexpected ${JSON.stringify(rest[0])} at ${i}`);
      segments.push(Number(index[1]));
      i += index[0].length;
    }
  }
  return segments;
}

/** The path of `segments`, written as the capture writes it (the inverse of `parsePath`). */
export function formatPath(segments: readonly PathSegment[]): string {
  return segments
    .map((segment, n) => {
      if (typeof segment === 'number') return `[${segment}]`;
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) return n === 0 ? segment : `.${segment}`;
      return `[${JSON.stringify(segment)}]`;
    })
    .join('');
}

/** True when one path is the other or lies inside it (they touch the same part of the document). */
export function overlaps(a: readonly PathSegment[], b: readonly PathSegment[]): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isObject(value: unknown): value is { [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function containerFor(segment: PathSegment): JsonValue {
  return typeof segment === 'number' ? [] : {};
}

/** Sets the value at `segments` under `root`, creating (or replacing) the containers on the way. */
export function setAt(root: { [key: string]: JsonValue }, segments: readonly PathSegment[], value: JsonValue): void {
  let node: JsonValue = root;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    const last = i === segments.length - 1;
    if (typeof segment === 'number') {
      const array = node as JsonValue[];
      if (last) array[segment] = value;
      else {
        const next = array[segment];
        const fits = typeof segments[i + 1] === 'number' ? Array.isArray(next) : isObject(next);
        if (!fits) array[segment] = containerFor(segments[i + 1]);
        node = array[segment];
      }
    } else {
      const object = node as { [key: string]: JsonValue };
      if (last) object[segment] = value;
      else {
        const next = Object.hasOwn(object, segment) ? object[segment] : undefined;
        const fits = typeof segments[i + 1] === 'number' ? Array.isArray(next) : isObject(next);
        if (!fits) object[segment] = containerFor(segments[i + 1]);
        node = object[segment];
      }
    }
  }
}

/**
 * Removes the value at `segments`, if it is there. An array element leaves a hole, so that the indexes
 * of the other leaves still name the elements they named; `compact` closes the holes at the end.
 * Containers below the top-level field that the removal leaves empty go too: their leaves were all
 * added by the change being undone (whatever existed before is set back from its own leaves).
 */
export function deleteAt(root: { [key: string]: JsonValue }, segments: readonly PathSegment[]): void {
  const chain: JsonValue[] = [root];
  for (let i = 0; i < segments.length - 1; i++) {
    const node = chain[i];
    const segment = segments[i];
    let next: JsonValue | undefined;
    if (typeof segment === 'number') next = Array.isArray(node) ? node[segment] : undefined;
    else next = isObject(node) && Object.hasOwn(node, segment) ? node[segment] : undefined;
    if (next === undefined) return;
    chain.push(next);
  }
  for (let i = segments.length - 1; i >= 0; i--) {
    const parent = chain[i];
    const segment = segments[i];
    // An array keeps a hole there (see above), which Reflect.deleteProperty leaves as `delete` would.
    if (typeof segment === 'number' && Array.isArray(parent)) Reflect.deleteProperty(parent, segment);
    else if (typeof segment === 'string' && isObject(parent)) delete parent[segment];
    else return;
    // Stop at the top-level field, and at the first container that still holds something.
    const emptied = chain[i];
    if (i <= 1 || !isEmpty(emptied)) return;
  }
}

function isEmpty(value: JsonValue): boolean {
  if (Array.isArray(value)) return value.every(() => false);
  return isObject(value) && Object.keys(value).length === 0;
}

/** The value with every array's holes closed up. */
export function compact(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.filter(() => true).map(compact);
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, compact(v)]));
  return value;
}
