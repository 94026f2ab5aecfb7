import { BadRequestException } from '@nestjs/common';
import { SECRET_KEY } from '../audit/capture/audited-resources';

/** What responses show instead of a stored secret; sending it back in a PATCH keeps the stored value. */
export const MASK = '********';

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function maskSecrets(value: Json, secret = false): Json {
  if (Array.isArray(value)) return value.map((item) => maskSecrets(item, secret));
  if (isObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskSecrets(v, secret || SECRET_KEY.test(k))]));
  }
  return secret ? MASK : value;
}

/** Replaces every MASK in `incoming` by the value stored at the same path. */
export function restoreSecrets(incoming: Json, stored: Json | undefined, path: string): Json {
  if (incoming === MASK) {
    if (stored === undefined || isObject(stored) || Array.isArray(stored)) {
      throw new BadRequestException(`${path} is "${MASK}", which keeps a stored secret, but none is stored there.`);
    }
    return stored;
  }
  if (Array.isArray(incoming)) {
    return incoming.map((item, i) =>
      restoreSecrets(item, Array.isArray(stored) && i < stored.length ? stored[i] : undefined, `${path}[${i}]`),
    );
  }
  if (isObject(incoming)) {
    return Object.fromEntries(
      Object.entries(incoming).map(([k, v]) => [
        k,
        // Own keys only: `stored.toString` is Object.prototype's function when no "toString" is stored.
        restoreSecrets(v, isObject(stored) && Object.hasOwn(stored, k) ? stored[k] : undefined, `${path}.${k}`),
      ]),
    );
  }
  return incoming;
}

export type { Json };
