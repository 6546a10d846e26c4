import { randomUUID } from 'node:crypto';

import { createPrismaClient, Database, type PrismaClient, publishEvent, SCHEMA_MIGRATION } from './index';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';

describe(`${Database.name} (row-level security)`, () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let sut: Database;
  let tenantA: string;
  let tenantB: string;
  let storeA: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    sut = Database.connect(testDb.appUrl, 2);
    tenantA = (await owner.tenant.create({ data: { name: 'Chain A' } })).id;
    tenantB = (await owner.tenant.create({ data: { name: 'Chain B' } })).id;
    storeA = (await owner.store.create({ data: { tenantId: tenantA, name: 'A1', timeZone: 'Europe/Moscow' } })).id;
    await owner.store.create({ data: { tenantId: tenantB, name: 'B1', timeZone: 'Europe/Kyiv' } });
    await owner.apiKey.create({ data: { tenantId: tenantA, name: 'k', prefix: 'pfx123', hash: 'h', scopes: ['stores:read'] } });
  });

  afterAll(async () => {
    await sut.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  it('finds the agents of several credential prefixes in one lookup, active tenants only', async () => {
    const disabled = (await owner.tenant.create({ data: { name: 'Disabled', status: 'DISABLED' } })).id;
    const storeOff = (await owner.store.create({ data: { tenantId: disabled, name: 'D1', timeZone: 'UTC' } })).id;
    const a1 = await owner.agent.create({
      data: { tenantId: tenantA, storeId: storeA, name: 'a1', status: 'ACTIVE', credentialPrefix: 'pfxa1', credentialHash: 'h1' },
    });
    const a2 = await owner.agent.create({ data: { tenantId: tenantA, storeId: storeA, name: 'a2', status: 'REVOKED', credentialPrefix: 'pfxa2' } });
    await owner.agent.create({
      data: { tenantId: disabled, storeId: storeOff, name: 'd1', status: 'ACTIVE', credentialPrefix: 'pfxd1', credentialHash: 'h3' },
    });

    const found = await sut.findAgentsByCredentialPrefixes(['pfxa1', 'pfxa2', 'pfxd1', 'nope']);
    expect([...found.keys()].sort()).toEqual(['pfxa1', 'pfxa2']);
    expect(found.get('pfxa1')).toEqual({ id: a1.id, tenantId: tenantA, credentialHash: 'h1', status: 'ACTIVE' });
    expect(found.get('pfxa2')).toMatchObject({ id: a2.id, status: 'REVOKED', credentialHash: null });
    expect(await sut.findAgentsByCredentialPrefixes([])).toEqual(new Map());
    await expect(sut.findAgentsByCredentialPrefixes(Array.from({ length: 1001 }, (_, i) => `p${i}`))).rejects.toThrow(RangeError);
  });

  it('shows a tenant only its own rows', async () => {
    const a = await sut.withTenant(tenantA, (tx) => tx.store.findMany());
    const b = await sut.withTenant(tenantB, (tx) => tx.store.findMany());
    expect(a.map((s) => s.name)).toEqual(['A1']);
    expect(b.map((s) => s.name)).toEqual(['B1']);
  });

  it('should not read, update or delete a store of another tenant, even by id', async () => {
    await sut.withTenant(tenantB, async (tx) => {
      expect(await tx.store.findUnique({ where: { id: storeA } })).toBeNull();
      expect((await tx.store.updateMany({ where: { id: storeA }, data: { name: 'hacked' } })).count).toBe(0);
      expect((await tx.store.deleteMany({ where: { id: storeA } })).count).toBe(0);
    });
    const still = await owner.store.findUniqueOrThrow({ where: { id: storeA } });
    expect(still.name).toBe('A1');
  });

  it('should not insert a row for another tenant (WITH CHECK)', async () => {
    await expect(sut.withTenant(tenantB, (tx) => tx.store.create({ data: { tenantId: tenantA, name: 'x', timeZone: 'UTC' } }))).rejects.toThrow(
      /row-level security/,
    );
  });

  it('sees nothing outside withTenant, and the setting does not leak to the pooled connection', async () => {
    await sut.withTenant(tenantA, (tx) => tx.store.count());
    expect(await sut.prisma.store.count()).toBe(0);
    expect(await sut.prisma.tenant.count()).toBe(0);
  });

  it('has row-level security enabled, forced and a policy on every table with a tenantId column', async () => {
    const rows = await owner.$queryRaw<{ table: string; rls: boolean; forced: boolean; policies: number }[]>`
      SELECT c.relname AS "table", c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
             (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
      FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
      WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace AND a.attname = 'tenantId' AND NOT a.attisdropped`;
    expect(rows.length).toBeGreaterThanOrEqual(15);
    const unprotected = rows.filter((r) => !r.rls || !r.forced || r.policies < 1).map((r) => r.table);
    expect(unprotected).toEqual([]);
  });

  it('hands committed domain events to onCommitted, and none from a rolled-back transaction', async () => {
    const seen: string[] = [];
    const hooked = Database.connect(testDb.appUrl, 1, { onCommitted: (events) => seen.push(...events.map((e) => `${e.tenantId}:${e.type}`)) });
    try {
      await hooked.withTenant(tenantA, async (tx) => {
        await publishEvent(tx, tenantA, { type: 'terminal.online', subjectType: 'terminal', subjectId: null, data: {} });
        expect(seen).toEqual([]);
      });
      // Handed over after commit, off the committing caller's path (numbered first).
      await hooked.eventsSettled();
      expect(seen).toEqual([`${tenantA}:terminal.online`]);
      await expect(
        hooked.withTenant(tenantA, async (tx) => {
          await publishEvent(tx, tenantA, { type: 'terminal.offline', subjectType: 'terminal', subjectId: null, data: {} });
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      await hooked.eventsSettled();
      expect(seen).toEqual([`${tenantA}:terminal.online`]);
      expect(await owner.domainEvent.count({ where: { type: 'terminal.offline' } })).toBe(0);
    } finally {
      await hooked.close();
    }
  });

  it("numbers events off the committing caller's path, many commits per payorch_sequence_events call under load (issue 19)", async () => {
    const db = Database.connect(testDb.appUrl, 4);
    const calls = jest.spyOn(db, 'sequenceEvents');
    try {
      const events = await Promise.all(
        Array.from({ length: 20 }, (_, n) =>
          db.withTenant(tenantA, (tx) => publishEvent(tx, tenantA, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { n } })),
        ),
      );
      await db.eventsSettled();
      expect(calls.mock.calls.length).toBeGreaterThanOrEqual(1);
      expect(calls.mock.calls.length).toBeLessThan(20);
      const rows = await owner.domainEvent.findMany({ where: { id: { in: events.map((e) => e.id) } }, select: { seq: true } });
      expect(rows.filter((r) => r.seq === null)).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('numbers domain events in commit order, after commit, and never lets the application choose the number', async () => {
    let commitFirst!: () => void;
    const gate = new Promise<void>((resolve) => (commitFirst = resolve));
    let insertedFirst!: () => void;
    const inserted = new Promise<void>((resolve) => (insertedFirst = resolve));
    // T1 inserts first but commits last.
    const first = sut.withTenant(tenantA, async (tx) => {
      const event = await publishEvent(tx, tenantA, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { n: 1 } });
      insertedFirst();
      await gate;
      return event;
    });
    await inserted;
    const second = await sut.withTenant(tenantA, (tx) =>
      publishEvent(tx, tenantA, { type: 'agent.online', subjectType: 'agent', subjectId: null, data: { n: 2 } }),
    );
    await sut.eventsSettled(); // numbering runs after commit, off the caller's path
    const secondSeq = (await owner.domainEvent.findUniqueOrThrow({ where: { id: second.id } })).seq;
    expect(secondSeq).not.toBeNull();
    commitFirst();
    const firstEvent = await first;
    await sut.eventsSettled();
    const firstRow = await owner.domainEvent.findUniqueOrThrow({ where: { id: firstEvent.id } });
    expect(Date.parse(firstEvent.createdAt)).toBeLessThanOrEqual(Date.parse(second.createdAt));
    expect(firstRow.seq).not.toBeNull();
    expect(firstRow.seq! > secondSeq!).toBe(true);
    expect(await sut.sequenceEvents()).toBeGreaterThanOrEqual(firstRow.seq!);
    await expect(
      sut.withTenant(tenantA, (tx) => tx.domainEvent.create({ data: { tenantId: tenantA, type: 'agent.online', subjectType: 'agent', data: {}, seq: 1n } })),
    ).rejects.toThrow(/permission denied/);
  });

  it('rejects a non-UUID tenant id before touching the database', async () => {
    await expect(sut.withTenant("x' OR 1=1 --", (tx) => tx.store.count())).rejects.toMatchObject({ code: 'TENANT_INVALID' });
  });

  it('finds an API key by prefix through the security-definer lookup only', async () => {
    const found = await sut.findApiKeyByPrefix('pfx123');
    expect(found).toMatchObject({ tenantId: tenantA, hash: 'h', scopes: ['stores:read'], revokedAt: null });
    expect(await sut.findApiKeyByPrefix('nope')).toBeNull();
    expect(await sut.prisma.apiKey.count()).toBe(0);
  });

  it("checks agents' access across tenants in one statement: by (agent, tenant, held prefix), no credential returned, another tenant's agent absent", async () => {
    const active = await owner.agent.create({
      data: {
        tenantId: tenantA,
        storeId: (await owner.store.create({ data: { tenantId: tenantA, name: 'S', timeZone: 'UTC' } })).id,
        name: 'a',
        status: 'ACTIVE',
        credentialPrefix: 'pfx-held',
        credentialHash: 'h',
      },
    });
    const off = (await owner.tenant.create({ data: { name: 'Off2', status: 'DISABLED' } })).id;
    const offAgent = await owner.agent.create({
      data: {
        tenantId: off,
        storeId: (await owner.store.create({ data: { tenantId: off, name: 'S', timeZone: 'UTC' } })).id,
        name: 'b',
        status: 'REVOKED',
        credentialPrefix: 'pfx-off',
        credentialHash: 'h',
      },
    });
    const found = await sut.checkAgentAccess([
      { agentId: active.id, tenantId: tenantA, credentialPrefix: 'pfx-held' },
      { agentId: active.id, tenantId: tenantA, credentialPrefix: 'pfx-replaced' },
      { agentId: active.id, tenantId: tenantB, credentialPrefix: 'pfx-held' },
      { agentId: offAgent.id, tenantId: off, credentialPrefix: 'pfx-off' },
      { agentId: randomUUID(), tenantId: tenantA, credentialPrefix: 'pfx-none' },
    ]);
    expect(found).toEqual([
      { status: 'ACTIVE', tenantStatus: 'ACTIVE', credentialHeld: true },
      { status: 'ACTIVE', tenantStatus: 'ACTIVE', credentialHeld: false },
      null,
      { status: 'REVOKED', tenantStatus: 'DISABLED', credentialHeld: true },
      null,
    ]);
    expect(await sut.checkAgentAccess([])).toEqual([]);
  });

  it('keeps the plans of the lookups that run before a tenant is known: PL/pgSQL, not a SQL body parsed and planned per call (issue 19)', async () => {
    const lookups = ['payorch_find_api_key', 'payorch_find_agents_by_credentials', 'payorch_find_agent_by_enrollment', 'payorch_check_agent_access'];
    const rows = await owner.$queryRaw<{ name: string; language: string; definer: boolean; config: string[] | null }[]>`
      SELECT p.proname AS "name", l.lanname AS "language", p.prosecdef AS "definer", p.proconfig AS "config"
      FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.proname = ANY(${lookups}::text[]) ORDER BY p.proname`;
    expect(rows).toEqual([...lookups].sort().map((name) => ({ name, language: 'plpgsql', definer: true, config: ['search_path=public'] })));
    // Same rules: a disabled tenant's key authenticates nothing.
    const disabled = (await owner.tenant.create({ data: { name: 'Off', status: 'DISABLED' } })).id;
    await owner.apiKey.create({ data: { tenantId: disabled, name: 'k', prefix: 'pfxoff', hash: 'h', scopes: ['stores:read'] } });
    expect(await sut.findApiKeyByPrefix('pfxoff')).toBeNull();
  });

  it("answers whether the build's migration is applied, to the application role, and nothing else of the migrations table", async () => {
    expect(await sut.migrationApplied(SCHEMA_MIGRATION)).toBe(true);
    expect(await sut.migrationApplied('20990101000000_not_written_yet')).toBe(false);
    await owner.$executeRawUnsafe(`UPDATE "_prisma_migrations" SET "rolled_back_at" = now() WHERE "migration_name" = '${SCHEMA_MIGRATION}'`);
    expect(await sut.migrationApplied(SCHEMA_MIGRATION)).toBe(false);
    await owner.$executeRawUnsafe(`UPDATE "_prisma_migrations" SET "rolled_back_at" = NULL WHERE "migration_name" = '${SCHEMA_MIGRATION}'`);
    // payorch_app reads no row of the owner's table itself.
    await expect(sut.withTenant(tenantA, (tx) => tx.$queryRaw`SELECT count(*) FROM "_prisma_migrations"`)).rejects.toThrow(/permission denied/);
  });

  it('takes a schema older than the function itself for not applied (no error)', async () => {
    await owner.$executeRawUnsafe('ALTER FUNCTION payorch_migration_applied(text) RENAME TO payorch_migration_applied_hidden');
    try {
      expect(await sut.migrationApplied(SCHEMA_MIGRATION)).toBe(false);
    } finally {
      await owner.$executeRawUnsafe('ALTER FUNCTION payorch_migration_applied_hidden(text) RENAME TO payorch_migration_applied');
    }
    expect(await sut.migrationApplied(SCHEMA_MIGRATION)).toBe(true);
  });
});
