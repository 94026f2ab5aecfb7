import { type MiddlewareConsumer, Module, type NestModule, ValidationPipe } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, APP_PIPE } from '@nestjs/core';
import { AuditModule } from './audit/audit.module';
import { AuthGuard } from './auth/auth.guard';
import { TokenUsageService } from './auth/token-usage.service';
import { MembersModule } from './members/members.module';
import { InputCheckMiddleware } from './common/input-check.middleware';
import { PrismaExceptionFilter } from './common/prisma-exception.filter';
import { UndeclaredInputInterceptor } from './common/undeclared-input.interceptor';
import { VALIDATION_OPTIONS } from './common/validation';
import { DatabaseModule } from './database/database.module';
import { HealthController } from './health/health.controller';
import { RequestContextModule } from './request-context/request-context.module';
import { ResourcesModule } from './resources/resources.module';
import { WebModule } from './web/web.module';
import { WorkspacesModule } from './workspaces/workspaces.module';

@Module({
  imports: [
    DatabaseModule,
    RequestContextModule,
    ResourcesModule,
    WorkspacesModule,
    MembersModule,
    AuditModule,
    WebModule,
  ],
  controllers: [HealthController],
  providers: [
    TokenUsageService,
    { provide: APP_GUARD, useClass: AuthGuard },
    { provide: APP_INTERCEPTOR, useClass: UndeclaredInputInterceptor },
    { provide: APP_PIPE, useValue: new ValidationPipe(VALIDATION_OPTIONS) },
    { provide: APP_FILTER, useClass: PrismaExceptionFilter },
  ],
})
export class AppModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(InputCheckMiddleware).forRoutes('{*path}');
  }
}
