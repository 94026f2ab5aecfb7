import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';

/** What each error status means on this API; docs/api.md repeats these, and a test keeps them in step. */
const ERRORS = {
  400: 'Bad input: the message names the field and what is accepted (also a workspaceId or id that is not a UUID).',
  401: 'No API token, or an unknown or revoked one.',
  403: 'The route is for workspace admins only.',
  404: 'No such workspace (or the caller is not a member of it), or no such record in it.',
  409: 'Conflict: a name already taken, a resource still used by another, or a limit reached (10 log streams); nothing was changed.',
  413: 'The JSON body is larger than 100 kB.',
  429: 'Too many requests for this token, or too many exports running; Retry-After says when to retry.',
  503: 'The database is unavailable or timed out; nothing was changed. Retry-After says when to retry.',
} as const;

export type ErrorStatus = keyof typeof ERRORS;

const error = (status: ErrorStatus) => ApiResponse({ status, description: ERRORS[status] });

/** Declares the error responses of an operation (or of every operation of a controller) in OpenAPI. */
export function ApiErrors(...statuses: ErrorStatus[]): MethodDecorator & ClassDecorator {
  return applyDecorators(...statuses.map(error));
}

const SUCCESS = { 200: 'OK', 201: 'Created', 204: 'Done; no body' } as const;

/**
 * An operation's success status and its errors. Method-level responses replace the default success
 * response that Swagger would otherwise infer, so it is declared here with them.
 */
export function ApiRoute(success: keyof typeof SUCCESS, ...statuses: ErrorStatus[]): MethodDecorator {
  return applyDecorators(ApiResponse({ status: success, description: SUCCESS[success] }), ...statuses.map(error));
}

/** A workspace route's errors: its id (400), the token (401), membership (404), the database (503). */
export const WORKSPACE_ROUTE_ERRORS: ErrorStatus[] = [400, 401, 404, 503];
/** …and for routes that take a JSON body, one that is too large. */
export const BODY_ERRORS: ErrorStatus[] = [...WORKSPACE_ROUTE_ERRORS, 413];
/** The audit-log and retention routes: admins only, rate-limited. */
export const AUDIT_ROUTE_ERRORS: ErrorStatus[] = [...WORKSPACE_ROUTE_ERRORS, 403, 429];
