import { UnsupportedMediaTypeException } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';

/**
 * The API takes JSON bodies only: a form (`application/x-www-form-urlencoded`) would otherwise be
 * parsed and accepted like JSON, and any other type reach validation as an empty body. Runs before
 * the body parsers; a request without a body (or without a Content-Type, which no parser reads) passes.
 */
export function jsonOnly(req: Request, _res: Response, next: NextFunction): void {
  const empty = req.headers['content-length'] === '0';
  if (!empty && req.headers['content-type'] !== undefined && req.is('application/json') === false) {
    next(
      new UnsupportedMediaTypeException(
        `A request body must be JSON sent as Content-Type: application/json, not ${req.headers['content-type']}.`,
      ),
    );
    return;
  }
  next();
}
