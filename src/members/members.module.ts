import { Module } from '@nestjs/common';
import { MembersController } from './members.controller';
import { MembersService } from './members.service';
import { TokensController } from './tokens.controller';
import { TokensService } from './tokens.service';

@Module({
  controllers: [MembersController, TokensController],
  providers: [MembersService, TokensService],
})
export class MembersModule {}
