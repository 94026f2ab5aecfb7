import { Module } from '@nestjs/common';
import { ResourcesModule } from '../resources/resources.module';
import { DemoSeeder } from './demo-seeder';
import { MeController } from './me.controller';
import { MeService } from './me.service';
import { WorkspacesService } from './workspaces.service';

@Module({
  imports: [ResourcesModule],
  controllers: [MeController],
  providers: [WorkspacesService, DemoSeeder, MeService],
  exports: [WorkspacesService, DemoSeeder],
})
export class WorkspacesModule {}
