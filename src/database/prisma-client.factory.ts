import { auditCapture, type RuntimeDataModel } from '../audit/capture/audit-capture.extension';
import { PrismaClient } from '../generated/prisma/client';

export const PRISMA = Symbol('PRISMA');

export type DriverAdapter = NonNullable<ConstructorParameters<typeof PrismaClient>[0]['adapter']>;

export interface PrismaClientOptions {
  adapter: DriverAdapter;
  /** See AuditCaptureOptions.requireContext. */
  requireAuditContext: boolean;
}

/** The one Prisma client of the application, with every extension applied here and nowhere else. */
export function createPrismaClient({ adapter, requireAuditContext }: PrismaClientOptions) {
  const base = new PrismaClient({ adapter });
  const dataModel = (base as unknown as { _runtimeDataModel?: RuntimeDataModel })._runtimeDataModel;
  if (!dataModel?.models) {
    throw new Error('Prisma client exposes no runtime data model; the audit capture cannot describe the models.');
  }
  return base.$extends(auditCapture(dataModel, { requireContext: requireAuditContext }));
}

export type AppPrismaClient = ReturnType<typeof createPrismaClient>;
