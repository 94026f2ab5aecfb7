import { Module } from '@nestjs/common';
import { ResourcesModule } from '../resources/resources.module';
import { DemoSeeder } from './demo-seeder';
import { WorkspacesService } from './workspaces.service';

@Module({
  imports: [ResourcesModule],
  providers: [WorkspacesService, DemoSeeder],
  exports: [WorkspacesService, DemoSeeder],
})
export class WorkspacesModule {}
