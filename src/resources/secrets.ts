import { BadRequestException } from '@nestjs/common';
import { SECRET_KEY, URL_PASSWORD } from '../audit/capture/audited-resources';

/** What responses show instead of a stored secret; sending it back in a PATCH keeps the stored value. */
export const MASK = '********';

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function own(object: Record<string, Json>, key: string): Json | undefined {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** The key of a header-list item's value, in any casing: `value`, `Value`. */
const VALUE_KEY = /^value$/i;

/**
 * Whether each member of `object` holds a secret: every one when the object itself is under a secret,
 * one whose key looks secret, and the `value` (any casing) of a header-list item with another member
 * that looks secret, whatever its key (`{ name: "Authorization", value }`, `{ Key: "X-Api-Key",
 * Value }`, `{ header: "Cookie", value }`; a label that is not a string is read as its JSON text, as
 * PostgreSQL's `->>` reads it).
 */
function secretMembers(object: Record<string, Json>, secret: boolean): (key: string) => boolean {
  const label = (key: string) => {
    const value = own(object, key);
    if (value === undefined || value === null) return false;
    return SECRET_KEY.test(typeof value === 'string' ? value : JSON.stringify(value));
  };
  const keys = Object.keys(object);
  const labelled = keys.some((key) => VALUE_KEY.test(key)) && keys.some((key) => !VALUE_KEY.test(key) && label(key));
  return (key) => secret || SECRET_KEY.test(key) || (labelled && VALUE_KEY.test(key));
}

/**
 * The secret rule, as the database's capture trigger applies it to audit entries: a value under a
 * key matching SECRET_KEY, a `value` beside a secret-looking label, and a URL's password.
 */
export function maskSecrets(value: Json, secret = false): Json {
  if (Array.isArray(value)) return value.map((item) => maskSecrets(item, secret));
  if (isObject(value)) {
    const isSecret = secretMembers(value, secret);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskSecrets(v, isSecret(k))]));
  }
  if (secret) return MASK;
  return typeof value === 'string' ? value.replace(URL_PASSWORD, `$1${MASK}@`) : value;
}

/**
 * Replaces every MASK in `incoming` (and every masked URL password) by the value stored at the same
 * path. Only where the incoming document itself marks a secret: a MASK moved under a harmless key or
 * label would otherwise show the stored secret in clear.
 */
export function restoreSecrets(incoming: Json, stored: Json | undefined, path: string, secret = false): Json {
  if (incoming === MASK) {
    if (!secret) {
      throw new BadRequestException(
        `${path} is "${MASK}", which keeps a stored secret, but ${path} is not a secret: send its value.`,
      );
    }
    if (stored === undefined || isObject(stored) || Array.isArray(stored)) {
      throw new BadRequestException(`${path} is "${MASK}", which keeps a stored secret, but none is stored there.`);
    }
    return stored;
  }
  if (typeof incoming === 'string') {
    const masked = URL_PASSWORD.exec(incoming);
    if (masked?.[2] !== MASK) return incoming;
    const kept = typeof stored === 'string' ? URL_PASSWORD.exec(stored) : null;
    if (!kept) {
      throw new BadRequestException(
        `${path} has the password "${MASK}", which keeps a stored URL's password, but no URL with a password is stored there.`,
      );
    }
    return `${masked[1]}${kept[2]}@${incoming.slice(masked[0].length)}`;
  }
  if (Array.isArray(incoming)) {
    return incoming.map((item, i) =>
      restoreSecrets(item, Array.isArray(stored) && i < stored.length ? stored[i] : undefined, `${path}[${i}]`, secret),
    );
  }
  if (isObject(incoming)) {
    const isSecret = secretMembers(incoming, secret);
    return Object.fromEntries(
      Object.entries(incoming).map(([k, v]) => [
        k,
        restoreSecrets(v, isObject(stored) ? own(stored, k) : undefined, `${path}.${k}`, isSecret(k)),
      ]),
    );
  }
  return incoming;
}

export type { Json };
