import type { NextFunction, Request, Response } from 'express';
import { randomUUID } from 'node:crypto';

/** An incoming X-Request-Id is echoed only when it is short and printable; otherwise one is generated. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const ids = new WeakMap<Request, string>();

/** The request's id: the incoming X-Request-Id when valid, else a new UUID; the same on every call. */
export function requestIdOf(req: Request): string {
  let id = ids.get(req);
  if (id === undefined) {
    const incoming = req.headers['x-request-id'];
    id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ids.set(req, id);
  }
  return id;
}

/**
 * Sets X-Request-Id before anything else can answer: the body parser's refusals (malformed JSON, a
 * body over the limit), the page's static files and the API documentation carry it too.
 */
export function requestIdHeader(req: Request, res: Response, next: NextFunction): void {
  res.setHeader('X-Request-Id', requestIdOf(req));
  next();
}
