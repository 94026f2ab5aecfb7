import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AdminGuard } from '../auth/admin.guard';
import { ApiRoute, BODY_ERRORS, WORKSPACE_ROUTE_ERRORS } from '../common/api-errors';
import { uuidPipe } from '../common/validation';
import { AddMemberDto, ChangeRoleDto, type MemberRole } from './members.dto';
import { type Member, MembersService } from './members.service';

/** A workspace's members: any member reads them, admins change them. */
@ApiTags('members')
@ApiBearerAuth()
@Controller('workspaces/:workspaceId/members')
export class MembersController {
  constructor(private readonly members: MembersService) {}

  @Get()
  @ApiRoute(200, ...WORKSPACE_ROUTE_ERRORS)
  async list(@Param('workspaceId') workspaceId: string): Promise<{ items: Member[] }> {
    return { items: await this.members.list(workspaceId) };
  }

  @Post()
  @UseGuards(AdminGuard)
  @ApiRoute(201, ...BODY_ERRORS, 403, 409)
  add(
    @Param('workspaceId') workspaceId: string,
    @Body() body: AddMemberDto,
  ): Promise<{ userId: string; role: MemberRole }> {
    return this.members.add(workspaceId, body);
  }

  @Patch(':userId')
  @UseGuards(AdminGuard)
  @ApiRoute(200, ...BODY_ERRORS, 403, 409)
  changeRole(
    @Param('workspaceId') workspaceId: string,
    @Param('userId', uuidPipe('userId')) userId: string,
    @Body() body: ChangeRoleDto,
  ): Promise<Member> {
    return this.members.changeRole(workspaceId, userId, body.role);
  }

  @Delete(':userId')
  @UseGuards(AdminGuard)
  @HttpCode(204)
  @ApiRoute(204, ...WORKSPACE_ROUTE_ERRORS, 403, 409)
  remove(
    @Param('workspaceId') workspaceId: string,
    @Param('userId', uuidPipe('userId')) userId: string,
  ): Promise<void> {
    return this.members.remove(workspaceId, userId);
  }
}
