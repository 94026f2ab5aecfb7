import { ApiErrors, ApiRoute, AUDIT_ROUTE_ERRORS } from '../../common/api-errors';
import { Body, Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsISO8601, IsOptional, Matches, registerDecorator } from 'class-validator';
import { AdminGuard } from '../../auth/admin.guard';
import { Public } from '../../auth/public.decorator';
import { INSTANT } from '../query/audit-log-query.dto';
import { AuditReadsService } from '../query/audit-reads.service';
import { TokenThrottlerGuard } from '../query/token-throttler.guard';
import { type Digest, digestProblem } from './audit-digest';
import { AuditDigestsService, type DigestVerification } from './audit-digests.service';
import { AuditSigningKeyService, type PublishedKey } from './audit-signing-key.service';

export class DigestsQueryDto {
  @ApiPropertyOptional({ description: 'Issued at or after, ISO-8601 with an offset or Z' })
  @IsOptional()
  @Matches(INSTANT, { message: 'from must be an ISO-8601 instant with an offset or Z, e.g. 2026-11-25T18:04:05.123Z' })
  @IsISO8601({ strict: true }, { message: 'from is not a valid date' })
  from?: string;

  @ApiPropertyOptional({ description: 'Issued before, ISO-8601 with an offset or Z' })
  @IsOptional()
  @Matches(INSTANT, { message: 'to must be an ISO-8601 instant with an offset or Z, e.g. 2026-11-26T00:00:00Z' })
  @IsISO8601({ strict: true }, { message: 'to is not a valid date' })
  to?: string;
}

/** A Digest exactly as the API returns it (see `digestProblem` for each field's rule). */
function IsDigest(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isDigest',
      target: target.constructor,
      propertyName: propertyName as string,
      validator: {
        validate: (value: unknown) => digestProblem(value) === undefined,
        defaultMessage: (args) => digestProblem(args?.value) ?? 'digest is invalid',
      },
    });
}

export class VerifyDigestDto {
  @ApiProperty({ description: 'A digest as GET …/audit-logs/digests returned it' })
  @IsDigest()
  digest!: Digest;
}

/** Signed digests of a workspace's hash chain, and verification of today's log against one. Admins only. */
@ApiTags('audit-logs')
@ApiBearerAuth()
@ApiErrors(...AUDIT_ROUTE_ERRORS)
@UseGuards(AdminGuard, TokenThrottlerGuard)
@Controller('workspaces/:workspaceId/audit-logs')
export class AuditDigestsController {
  constructor(
    private readonly digests: AuditDigestsService,
    private readonly reads: AuditReadsService,
  ) {}

  @Post('digests')
  @ApiRoute(201)
  issue(@Param('workspaceId') workspaceId: string): Promise<Digest> {
    return this.digests.issue(workspaceId);
  }

  @Get('digests')
  async list(@Param('workspaceId') workspaceId: string, @Query() query: DigestsQueryDto): Promise<{ items: Digest[] }> {
    return { items: await this.digests.list(workspaceId, query.from, query.to) };
  }

  @Post('verify')
  @HttpCode(200)
  @ApiRoute(200, 413)
  async verify(@Param('workspaceId') workspaceId: string, @Body() body: VerifyDigestDto): Promise<DigestVerification> {
    const outcome = await this.digests.verify(workspaceId, body.digest);
    await this.reads.verified(workspaceId, outcome);
    return outcome;
  }
}

/** The public keys that verify digests, for anyone: a verifier needs no account. */
@ApiTags('audit-logs')
@Controller('audit-logs')
export class AuditPublicKeysController {
  constructor(private readonly keys: AuditSigningKeyService) {}

  @Public()
  @Get('public-keys')
  @ApiRoute(200, 503)
  async publicKeys(): Promise<{ keys: PublishedKey[] }> {
    return { keys: await this.keys.published() };
  }
}
