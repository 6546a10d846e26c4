import { GatewaySession, idem } from '../e2e/support/gateway-session';

/**
 * What one tenant with a valid key can make the platform do beyond the request budget (docs/security.md, "Per-tenant
 * limits"): work, rows and Redis state proportional to something the tenant controls must have a bound.
 */
describe('tenant heavy work: schedules, campaigns and reports are bounded per tenant', () => {
  const session = new GatewaySession();
  const MAX_SCHEDULES = 3;
  const MAX_CAMPAIGNS = 2;
  let authA: Record<string, string>;
  let authB: Record<string, string>;
  let storeA: string;
  let storeB: string;

  beforeAll(async () => {
    await session.start({ SETTLEMENT_SCHEDULES_MAX_PER_TENANT: String(MAX_SCHEDULES), CAMPAIGNS_MAX_PER_TENANT: String(MAX_CAMPAIGNS) });
    const a = await session.tenant();
    const b = await session.tenant();
    authA = { Authorization: `Bearer ${a.apiKey}` };
    authB = { Authorization: `Bearer ${b.apiKey}` };
    storeA = (await session.owner.store.create({ data: { tenantId: a.tenantId, name: 'A', timeZone: 'Europe/Moscow' } })).id;
    storeB = (await session.owner.store.create({ data: { tenantId: b.tenantId, name: 'B', timeZone: 'UTC' } })).id;
    for (const [tenantId, storeId] of [
      [a.tenantId, storeA],
      [b.tenantId, storeB],
    ] as const) {
      await session.owner.terminal.create({
        data: { tenantId, storeId, name: 'till', protocol: 'JOINPROTO', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } },
      });
    }
  });
  afterAll(() => session.stop());

  const post = (path: string, body: object, auth: Record<string, string>) => session.http().post(path).set(auth).set('Idempotency-Key', idem()).send(body);

  /**
   * Every schedule is a BullMQ job scheduler (a Redis hash and a delayed job), a firing a day, and a row every
   * worker's schedule sync reads for every tenant; nothing stopped a tenant from creating millions of them. One enabled
   * schedule per store is its own rule (409 `settlement_schedule_exists`), so each creation here is for a store of its own.
   */
  it('refuses a settlement schedule past SETTLEMENT_SCHEDULES_MAX_PER_TENANT with 409 CONFLICT, also when the creations race', async () => {
    const tenantA = (await session.owner.store.findUniqueOrThrow({ where: { id: storeA } })).tenantId;
    const storesA = [storeA];
    for (let n = 2; n <= 7; n += 1) {
      storesA.push((await session.owner.store.create({ data: { tenantId: tenantA, name: `A${n}`, timeZone: 'Europe/Moscow' } })).id);
    }
    const create = (auth: Record<string, string>, storeId: string, minute: number) =>
      post('/v1/settlement-schedules', { storeId, localTime: `23:${String(minute).padStart(2, '0')}` }, auth);
    const answers = await Promise.all([1, 2, 3, 4, 5].map((n) => create(authA, storesA[n - 1]!, n)));
    expect(answers.map((r) => r.status).sort()).toEqual([201, 201, 201, 409, 409]);
    for (const refused of answers.filter((r) => r.status === 409)) {
      expect(refused.body.error).toMatchObject({ code: 'CONFLICT', details: { reason: 'settlement_schedule_limit', limit: MAX_SCHEDULES } });
    }
    // Another tenant's schedules are not counted; a deleted schedule frees its place.
    expect((await create(authB, storeB, 1)).status).toBe(201);
    const first = answers.find((r) => r.status === 201)!.body.id as string;
    expect((await session.http().delete(`/v1/settlement-schedules/${first}`).set(authA).set('Idempotency-Key', idem())).status).toBe(204);
    expect((await create(authA, storesA[5]!, 6)).status).toBe(201);
    const refused = await create(authA, storesA[6]!, 7);
    expect({ status: refused.status, details: refused.body.error?.details }).toEqual({
      status: 409,
      details: { reason: 'settlement_schedule_limit', limit: MAX_SCHEDULES },
    });
  });

  /**
   * Each campaign inserts a row per selected terminal (up to 50,000) and a BullMQ step job per terminal of its
   * running wave; a tenant creating and canceling campaigns in a loop wrote rows without bound.
   */
  it('refuses a campaign past CAMPAIGNS_MAX_PER_TENANT (open, or created in the last 24 hours) with 409 CONFLICT', async () => {
    const create = (auth: Record<string, string>) =>
      post('/v1/campaigns', { name: 'info', operation: { type: 'upload_logs' }, selector: {}, policy: { maintenanceWindow: null } }, auth);
    const answers = await Promise.all([1, 2, 3, 4].map(() => create(authA)));
    expect(answers.map((r) => r.status).sort()).toEqual([201, 201, 409, 409]);
    for (const refused of answers.filter((r) => r.status === 409)) {
      expect(refused.body.error).toMatchObject({ code: 'CONFLICT', details: { reason: 'campaign_limit', limit: MAX_CAMPAIGNS } });
    }
    expect((await create(authB)).status).toBe(201);
    // A canceled campaign still counts for 24 hours: its rows were written (create-and-cancel is no way around the bound).
    const first = answers.find((r) => r.status === 201)!.body.id as string;
    expect((await post(`/v1/campaigns/${first}/cancel`, {}, authA)).status).toBe(200);
    expect((await create(authA)).status).toBe(409);
    // A wave index past any campaign's (an int4 column) is a 400, not a 500 from PostgreSQL.
    for (const format of ['json', 'csv']) {
      const res = await session.http().get(`/v1/campaigns/${first}/targets`).query({ wave: 99_999_999_999, format }).set(authA);
      expect({ format, status: res.status, field: res.body.error?.details?.issues?.[0]?.field }).toEqual({ format, status: 400, field: 'wave' });
    }
    // Older than a day and ended: no longer counted.
    await session.owner.campaign.update({ where: { id: first }, data: { createdAt: new Date(Date.now() - 25 * 3_600_000) } });
    expect((await create(authA)).status).toBe(201);
  });

  it('answers 400 (never 500) for a wallet summary of a date that does not exist or a range over a year', async () => {
    const summary = (from: string, to: string) => session.http().get('/v1/settlements/wallet-summaries').query({ from, to }).set(authA);
    for (const [from, to] of [
      ['2026-02-30', '2026-03-01'],
      ['2026-13-01', '2026-12-31'],
      ['0000-01-01', '2026-01-01'],
    ]) {
      const res = await summary(from, to);
      expect({ from, to, status: res.status, code: res.body.error?.code }).toEqual({ from, to, status: 400, code: 'VALIDATION_FAILED' });
    }
    const wide = await summary('1900-01-01', '2100-12-31');
    expect(wide.status).toBe(400);
    expect(wide.body.error.details.issues).toEqual([expect.objectContaining({ field: 'to' })]);
    expect((await summary('2026-01-01', '2026-12-31')).status).toBe(200);
  });

  it('answers 400 (never 500, never another day) for a settlement business date that does not exist', async () => {
    const terminal = await session.http().get('/v1/terminals').set(authA);
    const terminalId = terminal.body.data[0].id as string;
    for (const path of [
      '/v1/settlements?from=2026-02-30',
      '/v1/settlements?to=2026-04-31',
      '/v1/settlements/export.csv?from=2026-02-30',
      '/v1/settlements/summary?date=2026-02-30',
    ]) {
      const res = await session.http().get(path).set(authA);
      expect({ path, status: res.status, code: res.body.error?.code }).toEqual({ path, status: 400, code: 'VALIDATION_FAILED' });
    }
    // It used to become a settlement of 2026-03-02 (the date rolled over), closing a day nobody asked for.
    const run = await post(`/v1/terminals/${terminalId}/settlements`, { businessDate: '2026-02-30' }, authA);
    expect({ status: run.status, code: run.body.error?.code }).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
    expect(await session.owner.settlement.count({ where: { terminalId } })).toBe(0);
  });
});
