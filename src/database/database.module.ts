import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, type AppConfig, loadConfig } from '../config/app-config';
import { DATABASE_CONNECTION, type DatabaseConnection, openDatabase } from './database-connection';
import {
  type AppPrismaClient,
  createPrismaClient,
  PRISMA,
  QUERY_LISTENER,
  type QueryListener,
} from './prisma-client.factory';

@Global()
@Module({
  providers: [
    { provide: APP_CONFIG, useFactory: () => loadConfig() },
    { provide: DATABASE_CONNECTION, inject: [APP_CONFIG], useFactory: (config: AppConfig) => openDatabase(config) },
    { provide: QUERY_LISTENER, useValue: null },
    {
      provide: PRISMA,
      inject: [APP_CONFIG, DATABASE_CONNECTION, QUERY_LISTENER],
      useFactory: (config: AppConfig, connection: DatabaseConnection, onQuery: QueryListener | null) =>
        createPrismaClient({
          adapter: connection.adapter,
          requireAuditContext: config.nodeEnv !== 'production',
          onQuery: onQuery ?? undefined,
        }),
    },
  ],
  exports: [APP_CONFIG, DATABASE_CONNECTION, PRISMA],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(
    @Inject(PRISMA) private readonly prisma: AppPrismaClient,
    @Inject(DATABASE_CONNECTION) private readonly connection: DatabaseConnection,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.prisma.$disconnect();
    await this.connection.close();
  }
}
