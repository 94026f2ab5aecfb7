import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, type AppConfig, loadConfig } from '../config/app-config';
import { DATABASE_CONNECTION, type DatabaseConnection, openDatabase, openPostgres } from './database-connection';
import {
  type AppPrismaClient,
  createPrismaClient,
  MAINTENANCE_PRISMA,
  PRISMA,
  QUERY_LISTENER,
  type QueryListener,
} from './prisma-client.factory';
import { ReadDatabase, REPLICA_CONNECTION, REPLICA_PRISMA } from './read-database';

/** The maintenance role's own pool, when DATABASE_MAINTENANCE_URL is set. */
const MAINTENANCE_CONNECTION = Symbol('MAINTENANCE_CONNECTION');

@Global()
@Module({
  providers: [
    { provide: APP_CONFIG, useFactory: () => loadConfig() },
    { provide: DATABASE_CONNECTION, inject: [APP_CONFIG], useFactory: (config: AppConfig) => openDatabase(config) },
    { provide: QUERY_LISTENER, useValue: null },
    {
      provide: MAINTENANCE_CONNECTION,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) =>
        config.databaseMaintenanceUrl ? openPostgres(config.databaseMaintenanceUrl, 2) : null,
    },
    {
      provide: MAINTENANCE_PRISMA,
      inject: [MAINTENANCE_CONNECTION, PRISMA],
      useFactory: (connection: DatabaseConnection | null, prisma: AppPrismaClient) =>
        connection ? createPrismaClient({ adapter: connection.adapter, requireAuditContext: false }) : prisma,
    },
    {
      provide: REPLICA_CONNECTION,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) =>
        config.databaseReplicaUrl ? openPostgres(config.databaseReplicaUrl, config.databasePoolSize) : null,
    },
    {
      provide: REPLICA_PRISMA,
      inject: [REPLICA_CONNECTION],
      useFactory: (connection: DatabaseConnection | null) =>
        connection ? createPrismaClient({ adapter: connection.adapter, requireAuditContext: false }) : null,
    },
    ReadDatabase,
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
  exports: [APP_CONFIG, DATABASE_CONNECTION, PRISMA, MAINTENANCE_PRISMA, ReadDatabase],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(
    @Inject(PRISMA) private readonly prisma: AppPrismaClient,
    @Inject(DATABASE_CONNECTION) private readonly connection: DatabaseConnection,
    @Inject(MAINTENANCE_PRISMA) private readonly maintenance: AppPrismaClient,
    @Inject(MAINTENANCE_CONNECTION) private readonly maintenanceConnection: DatabaseConnection | null,
    @Inject(REPLICA_PRISMA) private readonly replica: AppPrismaClient | null,
    @Inject(REPLICA_CONNECTION) private readonly replicaConnection: DatabaseConnection | null,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.maintenance !== this.prisma) await this.maintenance.$disconnect();
    await this.maintenanceConnection?.close();
    await this.replica?.$disconnect();
    await this.replicaConnection?.close();
    await this.prisma.$disconnect();
    await this.connection.close();
  }
}
