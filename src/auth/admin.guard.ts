import { type CanActivate, ForbiddenException, Injectable } from '@nestjs/common';
import { ClsService } from 'nestjs-cls';
import type { AppClsStore } from '../request-context/app-cls-store';

/** Lets through workspace admins only; runs after the AuthGuard has resolved the caller's role. */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(private readonly cls: ClsService<AppClsStore>) {}

  canActivate(): boolean {
    if (this.cls.get('workspaceRole') !== 'admin') {
      throw adminsOnly();
    }
    return true;
  }
}

/** The refusal of a caller who is not (or no longer) an admin of the workspace. */
export function adminsOnly(): ForbiddenException {
  return new ForbiddenException('This route is for workspace admins only.');
}
