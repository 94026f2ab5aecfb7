import { BadRequestException } from '@nestjs/common';
import {
  PEM_PRIVATE_KEY,
  SECRET_KEY,
  TEXT_PARAMETER,
  URL_PASSWORD,
  VALUE_KEY,
} from '../audit/capture/audited-resources';

/** What responses show instead of a stored secret; sending it back in a PATCH keeps the stored value. */
export const MASK = '********';

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function own(object: Record<string, Json>, key: string): Json | undefined {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/**
 * Whether a label looks secret: a string, or the JSON text of another value, as PostgreSQL's `->>`
 * reads it.
 */
function looksSecret(label: Json | undefined): boolean {
  if (label === undefined || label === null) return false;
  return SECRET_KEY.test(typeof label === 'string' ? label : JSON.stringify(label));
}

/**
 * Whether each member of `object` holds a secret: every one when the object itself is under a secret,
 * one whose key looks secret, and the value (VALUE_KEY: `value`, `val`, `v`, `content`, any casing)
 * of a header-list item with another member that looks secret, whatever its key
 * (`{ name: "Authorization", value }`, `{ key: "Authorization", val }`, `{ k: "X-Api-Key", v }`,
 * `{ name: "Cookie", content }`, `{ content: "Cookie", value }`).
 */
function secretMembers(object: Record<string, Json>, secret: boolean): (key: string) => boolean {
  const keys = Object.keys(object);
  const labels = keys.some((key) => VALUE_KEY.test(key))
    ? keys.filter((key) => looksSecret(own(object, key))).length
    : 0;
  return (key) =>
    secret || SECRET_KEY.test(key) || (VALUE_KEY.test(key) && labels > (looksSecret(own(object, key)) ? 1 : 0));
}

/**
 * Whether each item of `array` holds a secret: every one under a secret, and the second of a pair in
 * a list (`listed`: `array` is an item of an array) whose first looks secret (`[["Authorization",
 * "Bearer …"]]`).
 */
function secretItems(array: Json[], secret: boolean, listed: boolean): (index: number) => boolean {
  const pair = listed && array.length === 2 && looksSecret(array[0]);
  return (index) => secret || (pair && index === 1);
}

/**
 * A secret inside a text: the value of the parameter `name`, the body of the private key whose BEGIN
 * line is `name`, or (name null) the password of a URL.
 */
export interface TextSecret {
  name: string | null;
  value: string;
}

const PEM_PRIVATE_KEYS = new RegExp(PEM_PRIVATE_KEY.source, 'g');
const URL_PASSWORDS = new RegExp(URL_PASSWORD.source, 'g');
const TEXT_PARAMETERS = new RegExp(TEXT_PARAMETER.source, 'g');

/** From `lastIndex`: the next line break (`\n` or `\r`); the spaces or tabs starting there. */
const LINE_BREAK = /[\r\n]/g;
const BLANKS = /[ \t]*/y;

/**
 * `text` with each secret it holds replaced by `replace(secret)`: first the body of every PEM private
 * key, then every URL's password, then in the result the value of every parameter named like a
 * secret, from after its `=` or `:` and the spaces or tabs that follow: a header line's (`:` after the
 * name: `Cookie: sid=…; theme=dark`) to the end of its line, since a header's value may hold `;`, `=`
 * and spaces, and any other's to the start of the next parameter or the end of the text. The
 * database's `audit_redact_text` applies the same steps with the same regexes.
 */
export function replaceTextSecrets(text: string, replace: (secret: TextSecret) => string): string {
  const keyless = text.replace(
    PEM_PRIVATE_KEYS,
    (_match, head: string, body: string, end: string) => `${head}${replace({ name: head, value: body })}${end}`,
  );
  const unlocked = keyless.replace(
    URL_PASSWORDS,
    (_match, head: string, password: string) => `${head}${replace({ name: null, value: password })}@`,
  );
  const parameters = [...unlocked.matchAll(TEXT_PARAMETERS)];
  let out = '';
  let at = 0;
  let hidden: TextSecret | undefined;
  for (let i = 0; i <= parameters.length; i++) {
    const parameter = parameters[i] as RegExpExecArray | undefined;
    // A parameter on a header line is part of its value.
    if (parameter && parameter.index < at) continue;
    const before = unlocked.slice(at, parameter ? parameter.index : unlocked.length);
    if (hidden) hidden.value += before;
    else out += before;
    if (!parameter) break;
    const [whole, , name, separator] = parameter;
    at = parameter.index + whole.length;
    const next = unlocked.charAt(at);
    const named = separator === '=' || next === ' ' || next === '\t' || name.endsWith('"') || SECRET_KEY.test(name);
    if (hidden && named) {
      out += replace(hidden);
      hidden = undefined;
    }
    if (hidden) {
      hidden.value += whole;
      continue;
    }
    out += whole;
    if (named && SECRET_KEY.test(name) && separator === ':') {
      BLANKS.lastIndex = at;
      const spaces = BLANKS.exec(unlocked)![0];
      LINE_BREAK.lastIndex = at + spaces.length;
      const end = LINE_BREAK.exec(unlocked)?.index ?? unlocked.length;
      out += spaces + replace({ name, value: unlocked.slice(at + spaces.length, end) });
      at = end;
    } else if (named && SECRET_KEY.test(name)) {
      const spaces = /^[ \t]*/.exec(unlocked.slice(at, parameters[i + 1]?.index ?? unlocked.length))![0];
      out += spaces;
      at += spaces.length;
      hidden = { name, value: '' };
    }
  }
  if (hidden) out += replace(hidden);
  return out;
}

/** How the capture records a secret in an entry's `changes`. */
export const REDACTED = '[REDACTED]';

/**
 * Whether `value` is an object with a key that holds a secret by the text rule (one the rule changes) (a URL with its
 * password, `…?token=…`): the object is then a secret as a whole, so that no path or response shows
 * the key.
 */
function keysHoldSecrets(value: Json | undefined): boolean {
  return isObject(value) && Object.keys(value).some((key) => replaceTextSecrets(key, () => REDACTED) !== key);
}

/** The secrets `text` holds, in order. */
export function textSecrets(text: string): TextSecret[] {
  const found: TextSecret[] = [];
  replaceTextSecrets(text, (secret) => {
    found.push(secret);
    return secret.value;
  });
  return found;
}

/**
 * The secret rule, as the database's capture trigger applies it to audit entries: a value under a
 * key matching SECRET_KEY, a value (VALUE_KEY) beside a secret-looking label, the second item of a pair in a
 * list whose first looks secret, and in text a URL's password and the value of a parameter named
 * like a secret. A secret object or array is masked whole, its keys with it, and so is an object
 * with a key that holds a secret by the text rule.
 */
export function maskSecrets(value: Json, secret = false, listed = false): Json {
  if (secret || keysHoldSecrets(value)) return MASK;
  if (Array.isArray(value)) {
    const isSecret = secretItems(value, secret, listed);
    return value.map((item, i) => maskSecrets(item, isSecret(i), true));
  }
  if (isObject(value)) {
    const isSecret = secretMembers(value, secret);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskSecrets(v, isSecret(k))]));
  }
  return typeof value === 'string' ? replaceTextSecrets(value, () => MASK) : value;
}

/**
 * Replaces every MASK in `incoming` by the value stored at the same path, and a text with masked
 * secrets by the stored text when it is that text masked (and by nothing else).
 * Only where the incoming document itself marks a secret, or where the stored value is masked whole
 * for its keys: a MASK moved under a harmless key or label would otherwise show the stored secret in
 * clear.
 */
export function restoreSecrets(
  incoming: Json,
  stored: Json | undefined,
  path: string,
  secret = false,
  listed = false,
): Json {
  if (incoming === MASK) {
    if (!secret && !keysHoldSecrets(stored)) {
      throw new BadRequestException(
        `${path} is "${MASK}", which keeps a stored secret, but ${path} is not a secret: send its value.`,
      );
    }
    if (stored === undefined) {
      throw new BadRequestException(`${path} is "${MASK}", which keeps a stored secret, but none is stored there.`);
    }
    return stored;
  }
  if (typeof incoming === 'string') {
    if (secret || !textSecrets(incoming).some((found) => found.value.includes(MASK))) return incoming;
    // A kept secret stays with the text it was stored in: sent back with a new host or another
    // change, the stored password or token would go wherever the new text points.
    if (typeof stored === 'string' && replaceTextSecrets(stored, () => MASK) === incoming) return stored;
    throw new BadRequestException(
      `${path} has "${MASK}" in place of a stored secret, but is not the stored text with its secrets masked: ` +
        `a kept secret stays with the text it was stored in, so send the secret with a changed text.`,
    );
  }
  if (Array.isArray(incoming)) {
    const isSecret = secretItems(incoming, secret, listed);
    return incoming.map((item, i) =>
      restoreSecrets(
        item,
        Array.isArray(stored) && i < stored.length ? stored[i] : undefined,
        `${path}[${i}]`,
        isSecret(i),
        true,
      ),
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
