import { Inject, Injectable } from '@nestjs/common';

import { type Database, Prisma } from '@payorch/db';
import type { TenantContext } from '@payorch/domain';

import { keysetPage, type Page } from '../common/pagination';
import { DATABASE } from '../common/tokens';
import { type ListRelaySessionsQuery, type RelaySessionResponse, toRelaySessionResponse } from './dto/relay-session.dto';

/** The Joinproto relay audit (RelaySession rows written by the device connector), read-only, tenant-scoped by RLS. */
@Injectable()
export class RelaySessionsService {
  constructor(@Inject(DATABASE) private readonly db: Database) {}

  /** Newest first by (startedAt, id); the cursor is the list routes' opaque keyset cursor. */
  list(ctx: TenantContext, query: ListRelaySessionsQuery): Promise<Page<RelaySessionResponse>> {
    const { terminalId, storeId, state, outcome, from, to } = query;
    return this.db.withTenant(ctx, async (tx) => {
      const filters = {
        terminalId,
        'terminalId:store': storeId ? { in: Prisma.sql`SELECT "id" FROM "Terminal" WHERE "storeId" = ${storeId}` } : undefined,
        endedAt: state === 'open' ? null : state === 'ended' ? { not: null } : undefined,
        outcome,
        startedAt: from || to ? { gte: from && new Date(from), lt: to && new Date(to) } : undefined,
      };
      const load = async (ids: string[]) =>
        (await tx.relaySession.findMany({ where: { id: { in: ids } }, orderBy: [{ startedAt: 'desc' }, { id: 'desc' }] })).map((row) => ({
          ...row,
          createdAt: row.startedAt,
        }));
      return keysetPage(tx, 'RelaySession', filters, query, load, toRelaySessionResponse, 'startedAt');
    });
  }
}
