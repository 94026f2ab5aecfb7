import { ClsPluginTransactional } from '@nestjs-cls/transactional';
import { TransactionalAdapterPrisma } from '@nestjs-cls/transactional-adapter-prisma';
import { Module } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ClsModule } from 'nestjs-cls';
import { randomUUID } from 'node:crypto';
import { DatabaseModule } from '../database/database.module';
import { PRISMA } from '../database/prisma-client.factory';

/** An incoming X-Request-Id is echoed only when it is short and printable; otherwise one is generated. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

@Module({
  imports: [
    ClsModule.forRoot({
      global: true,
      middleware: {
        mount: true,
        generateId: true,
        idGenerator: (req: Request) => {
          const incoming = req.headers['x-request-id'];
          return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
        },
        setup: (cls, req: Request, res: Response) => {
          cls.set('requestId', cls.getId());
          cls.set('ip', req.ip);
          cls.set('userAgent', req.headers['user-agent']);
          res.setHeader('X-Request-Id', cls.getId());
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
