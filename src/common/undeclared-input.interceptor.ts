import {
  BadRequestException,
  type CallHandler,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
} from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import type { Request } from 'express';
import type { Observable } from 'rxjs';

/** The kinds of input (query, body) an API route declares with `@Query()` / `@Body()`. */
function declaredInputs(context: ExecutionContext): Set<RouteParamtypes> {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), context.getHandler().name) ??
    {}) as Record<string, unknown>;
  return new Set(Object.keys(args).map((key) => Number(key.split(':')[0]) as RouteParamtypes));
}

/** The validation pipe's message for each property of `value` (a parsed query or body). */
function undeclared(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return [];
  return Object.keys(value).map((key) => `property ${key} should not exist`);
}

/**
 * Unknown query and body properties are a 400 on every API route, also on those that take no query
 * or no body at all (where no validation pipe sees them): `GET …/members?foo=1`, a body sent to
 * `POST …/restore`. Runs after the guards, as the validation pipe does, so that 401/403/404 come first.
 */
@Injectable()
export class UndeclaredInputInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.getType() === 'http' ? context.switchToHttp().getRequest<Request>() : undefined;
    if (request?.path.startsWith('/api/')) {
      const declared = declaredInputs(context);
      const problems = [
        ...(declared.has(RouteParamtypes.QUERY) ? [] : undeclared(request.query)),
        ...(declared.has(RouteParamtypes.BODY) ? [] : undeclared(request.body)),
      ];
      if (problems.length > 0) throw new BadRequestException(problems);
    }
    return next.handle();
  }
}
