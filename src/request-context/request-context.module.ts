import { ClsPluginTransactional } from '@nestjs-cls/transactional';
import { TransactionalAdapterPrisma } from '@nestjs-cls/transactional-adapter-prisma';
import { Module } from '@nestjs/common';
import type { Request } from 'express';
import { ClsModule } from 'nestjs-cls';
import { DatabaseModule } from '../database/database.module';
import { PRISMA } from '../database/prisma-client.factory';
import { requestIdOf } from './request-id';

@Module({
  imports: [
    ClsModule.forRoot({
      global: true,
      middleware: {
        mount: true,
        generateId: true,
        idGenerator: (req: Request) => requestIdOf(req),
        setup: (cls, req: Request) => {
          cls.set('requestId', cls.getId());
          cls.set('ip', req.ip);
          cls.set('userAgent', req.headers['user-agent']);
        },
      },
      plugins: [
        new ClsPluginTransactional({
          imports: [DatabaseModule],
          adapter: new TransactionalAdapterPrisma({ prismaInjectionToken: PRISMA, sqlFlavor: 'postgresql' }),
        }),
      ],
    }),
  ],
})
export class RequestContextModule {}
