import { BadRequestException, Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';

/** Objects and arrays may nest this deep in a body (the body itself is level 1). */
export const MAX_NESTING = 32;
/** The JSON body parser's limit (Express's default), answered with 413 above it. */
export const MAX_BODY = '100kb';

const ACCEPTED = 'text must be valid Unicode without NUL characters';
const NUL = '\u0000';
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Keys the validation pipe deletes to stop prototype pollution: refused rather than silently dropped. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function problem(text: string): string | undefined {
  if (text.includes(NUL)) return 'a NUL character (\\u0000)';
  if (LONE_SURROGATE.test(text)) return 'a lone surrogate (half of a UTF-16 pair)';
  return undefined;
}

/**
 * The first thing in `value` that no route accepts, described for a 400: a NUL or a lone surrogate in
 * any string or key (PostgreSQL cannot store either in text or jsonb), a key the validation pipe
 * would silently drop (__proto__, constructor, prototype), or nesting deeper than MAX_NESTING. Iterative, so that a body nested thousands deep cannot exhaust the stack here.
 */
export function findBadInput(value: unknown, what: 'body' | 'query'): string | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: '', depth: 1 }];
  while (stack.length > 0) {
    const { value: current, path, depth } = stack.pop()!;
    const name = path || (what === 'body' ? 'the body' : 'the query');
    if (typeof current === 'string') {
      const found = problem(current);
      if (found) return `${name} contains ${found}: ${ACCEPTED}.`;
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    if (depth > MAX_NESTING) {
      return `The ${what} nests objects and arrays deeper than ${MAX_NESTING} levels, the most accepted.`;
    }
    if (Array.isArray(current)) {
      current.forEach((item, i) => stack.push({ value: item, path: `${path}[${i}]`, depth: depth + 1 }));
      continue;
    }
    for (const [key, item] of Object.entries(current as Record<string, unknown>)) {
      const found = problem(key);
      if (found) return `A key in ${path || `the ${what}`} contains ${found}: ${ACCEPTED}.`;
      if (FORBIDDEN_KEYS.has(key)) {
        return `${path ? `${path}.${key}` : key} is not accepted as a key (__proto__, constructor and prototype are reserved).`;
      }
      stack.push({ value: item, path: path ? `${path}.${key}` : key, depth: depth + 1 });
    }
  }
  return undefined;
}

/** Runs after the body parser and before any guard, pipe or query: one check for every route. */
@Injectable()
export class InputCheckMiddleware implements NestMiddleware {
  use(req: Request, _res: Response, next: NextFunction): void {
    // Query values are one level deep (`?a=1&a=2` is an array), so the nesting limit only bites bodies.
    const bad = findBadInput(req.query, 'query') ?? findBadInput(req.body, 'body');
    if (bad) throw new BadRequestException(bad);
    next();
  }
}
