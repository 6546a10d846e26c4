import {
  ControllerSuite,
  expectError,
  expectIdsChecked,
  expectInvalid,
  expectNotFound,
  expectStatus,
  expectWritesForbidden,
  UNKNOWN_ID,
} from '../support/controller-suite';

/** SettlementsController (close-day runs and reports) and SettlementSchedulesController. No worker runs here: runs stay PENDING. */
describe('SettlementsController and SettlementSchedulesController', () => {
  const suite = new ControllerSuite();
  const connection = { kind: 'tcp', host: '127.0.0.1', port: 9 };
  let storeId: string;
  let terminalId: string;
  let settlement: Record<string, any>;
  let schedule: Record<string, any>;
  let storeOfB: string;
  let terminalOfB: string;
  let settlementOfB: string;
  let scheduleOfB: string;

  beforeAll(async () => {
    await suite.start();
    storeId = (await suite.create('/v1/stores', { name: 'S', timeZone: 'Europe/Moscow' })).id;
    terminalId = (
      await suite.create('/v1/terminals', {
        name: 'POS',
        storeId,
        protocol: 'joinproto',
        connection,
      })
    ).id;
    const run = await suite.call('post', `/v1/terminals/${terminalId}/settlements`, {
      body: { businessDate: '2026-03-01' },
    });
    expectStatus(run, 202);
    settlement = run.body;
    schedule = await suite.create('/v1/settlement-schedules', { storeId, localTime: '23:30' });
    storeOfB = (await suite.create('/v1/stores', { name: 'B', timeZone: 'UTC' }, suite.b)).id;
    terminalOfB = (await suite.create('/v1/terminals', { name: 'POS of B', storeId: storeOfB, protocol: 'joinproto', connection }, suite.b)).id;
    settlementOfB = (
      await suite.call('post', `/v1/terminals/${terminalOfB}/settlements`, {
        as: suite.b,
        body: {},
      })
    ).body.id;
    scheduleOfB = (await suite.create('/v1/settlement-schedules', { terminalId: terminalOfB, localTime: '01:00' }, suite.b)).id;
  });
  afterAll(() => suite.stop());

  describe('settlements', () => {
    it('answers each route with its status code', async () => {
      expect(settlement).toMatchObject({
        terminalId,
        storeId,
        status: 'pending',
        trigger: 'manual',
        businessDate: '2026-03-01',
      });
      // No body: the store's business date of today.
      expectStatus(await suite.call('post', `/v1/terminals/${terminalId}/settlements`), 202);
      const list = await suite.call('get', '/v1/settlements', {
        query: {
          terminalId,
          from: '2026-03-01',
          to: '2026-03-01',
          status: 'pending',
          hasDiscrepancies: 'false',
        },
      });
      expectStatus(list, 200);
      expect(list.body.data.map((s: { id: string }) => s.id)).toEqual([settlement.id]);
      const summary = await suite.call('get', '/v1/settlements/summary', {
        query: { date: '2026-03-01', storeId },
      });
      expectStatus(summary, 200);
      expect(summary.body).toMatchObject({ date: '2026-03-01', chain: { total: 1, pending: 1 } });
      const csv = await suite.call('get', '/v1/settlements/export.csv', {
        query: { from: '2026-03-01', to: '2026-03-01' },
      });
      expectStatus(csv, 200);
      expect(csv.headers['content-type']).toMatch(/^text\/csv/);
      expect(csv.text).toContain(settlement.id);
      expectStatus(await suite.call('get', `/v1/settlements/${settlement.id}`), 200);
      const report = await suite.call('get', `/v1/settlements/${settlement.id}/discrepancies`);
      expectStatus(report, 200);
      expect(report.body).toEqual({
        settlementId: settlement.id,
        terminalId,
        storeId,
        businessDate: '2026-03-01',
        status: 'pending',
        outcome: null,
        startedAt: null,
        finishedAt: null,
        batches: [],
        discrepancies: [],
      });
      const reportCsv = await suite.call('get', `/v1/settlements/${settlement.id}/discrepancies.csv`);
      expectStatus(reportCsv, 200);
      expect(reportCsv.headers['content-type']).toMatch(/^text\/csv/);
      expect(reportCsv.text).toBe(
        'settlement_id,terminal_id,business_date,batch,kind,bucket,direction,ours,terminal,amount,operation_id,rrn,reference,detail\r\n',
      );
    });

    it("without a businessDate settles the store's business day as a schedule does: before 06:00 local time, the previous day", async () => {
      /** A store whose zone (a whole-hour Etc/GMT offset) reads `hour`:xx now, with a terminal, and its local date now. */
      const storeAtLocalHour = async (hour: number) => {
        const now = new Date();
        let offset = (hour - now.getUTCHours() + 48) % 24;
        if (offset > 14) offset -= 24;
        // Etc/GMT names have the sign inverted: Etc/GMT-3 is UTC+3.
        const timeZone = offset === 0 ? 'Etc/GMT' : `Etc/GMT${offset > 0 ? '-' : '+'}${Math.abs(offset)}`;
        const store = (await suite.create('/v1/stores', { name: `at ${hour}:00`, timeZone })).id;
        const terminal = (await suite.create('/v1/terminals', { name: 'POS', storeId: store, protocol: 'joinproto', connection })).id;
        const local = new Date(now.getTime() + offset * 3_600_000);
        const dayBefore = new Date(local.getTime() - 86_400_000);
        return { terminal, today: local.toISOString().slice(0, 10), yesterday: dayBefore.toISOString().slice(0, 10) };
      };
      // 03:xx local (hours away from 06:00 and from midnight whenever the test runs): the night shift's day, begun yesterday.
      const night = await storeAtLocalHour(3);
      const atNight = await suite.call('post', `/v1/terminals/${night.terminal}/settlements`);
      expectStatus(atNight, 202);
      expect(atNight.body.businessDate).toBe(night.yesterday);
      // 12:xx local: today.
      const noon = await storeAtLocalHour(12);
      const atNoon = await suite.call('post', `/v1/terminals/${noon.terminal}/settlements`, { body: {} });
      expectStatus(atNoon, 202);
      expect(atNoon.body.businessDate).toBe(noon.today);
    });

    it('validates bodies, queries and ids with 400 naming the fields', async () => {
      expectInvalid(
        await suite.call('post', `/v1/terminals/${terminalId}/settlements`, {
          body: { businessDate: '01.03.2026' },
        }),
        'businessDate',
      );
      expectInvalid(
        await suite.call('post', `/v1/terminals/${terminalId}/settlements`, {
          body: { businessDate: '2026-03-01', force: true },
        }),
        '(body)',
      );
      expectInvalid(await suite.call('get', '/v1/settlements', { query: { status: 'DONE' } }), 'status');
      expectInvalid(
        await suite.call('get', '/v1/settlements', {
          query: { hasDiscrepancies: 'maybe', from: 'March' },
        }),
        'hasDiscrepancies',
        'from',
      );
      expectInvalid(await suite.call('get', '/v1/settlements/summary'), 'date');
      expectInvalid(await suite.call('get', '/v1/settlements/summary', { query: { date: '2026-02-30x' } }), 'date');
      // The CSV route's error is the JSON envelope, not a text/csv attachment.
      const tooMany = await suite.call('get', '/v1/settlements/export.csv', {
        query: { limit: 50_001 },
      });
      expectInvalid(tooMany, 'limit');
      expect(tooMany.headers['content-disposition']).toBeUndefined();
      // An unknown query parameter of the strict export query is refused, not ignored.
      expectError(await suite.call('get', '/v1/settlements/export.csv', { query: { format: 'xlsx' } }), 400, 'VALIDATION_FAILED');
    });

    it('answers 404 for an unknown settlement or terminal and for those of another tenant', async () => {
      await expectIdsChecked(
        suite,
        [
          { method: 'get', path: (id) => `/v1/settlements/${id}` },
          { method: 'get', path: (id) => `/v1/settlements/${id}/discrepancies` },
          { method: 'get', path: (id) => `/v1/settlements/${id}/discrepancies.csv` },
        ],
        { otherTenants: settlementOfB },
      );
      await expectIdsChecked(suite, [{ method: 'post', path: (id) => `/v1/terminals/${id}/settlements`, body: {} }], { otherTenants: terminalOfB });
      expect((await suite.call('get', '/v1/settlements')).body.data.map((s: { id: string }) => s.id)).not.toContain(settlementOfB);
      expect(await suite.session.appDb.withTenant(suite.a.tenantId, (tx) => tx.settlement.findUnique({ where: { id: settlementOfB } }))).toBeNull();
    });

    it('refuses a read-only key on the mutating route (403)', async () => {
      const before = await suite.session.owner.settlement.count({ where: { terminalId } });
      await expectWritesForbidden(suite, [{ method: 'post', path: `/v1/terminals/${terminalId}/settlements` }], 'settlements:write');
      expect(await suite.session.owner.settlement.count({ where: { terminalId } })).toBe(before);
      expectStatus(
        await suite.call('get', '/v1/settlements/summary', {
          as: suite.readOnly,
          query: { date: '2026-03-01' },
        }),
        200,
      );
    });
  });

  describe('settlement schedules', () => {
    it('answers each route with its status code', async () => {
      expect(schedule).toMatchObject({
        storeId,
        terminalId: null,
        localTime: '23:30',
        enabled: true,
      });
      const created = await suite.call('post', '/v1/settlement-schedules', {
        body: { terminalId, localTime: '22:00', enabled: false },
      });
      expectStatus(created, 201);
      const list = await suite.call('get', '/v1/settlement-schedules', { query: { terminalId } });
      expectStatus(list, 200);
      expect(list.body.data.map((s: { id: string }) => s.id)).toEqual([created.body.id]);
      expectStatus(await suite.call('get', `/v1/settlement-schedules/${created.body.id}`), 200);
      const patched = await suite.call('patch', `/v1/settlement-schedules/${created.body.id}`, {
        body: { localTime: '21:15', enabled: true },
      });
      expectStatus(patched, 200);
      expect(patched.body).toMatchObject({ localTime: '21:15', enabled: true });
      expectStatus(await suite.call('delete', `/v1/settlement-schedules/${created.body.id}`), 204);
    });

    it('a PATCH that changes nothing leaves the schedule as it was: its firings since stay its own to catch up', async () => {
      // The worker's catch-up of firings whose runs Redis lost skips those before the row's updatedAt (the schedule
      // changed since). Until 2026-12-07 `{"enabled": true}` on an enabled schedule moved it, and a lost firing was never
      // caught up.
      const created = await suite.create('/v1/settlement-schedules', { terminalId, localTime: '20:45', enabled: false });
      const row = () => suite.session.owner.settlementSchedule.findUniqueOrThrow({ where: { id: created.id } });
      const enabled = await suite.call('patch', `/v1/settlement-schedules/${created.id}`, { body: { enabled: true } });
      expectStatus(enabled, 200);
      const since = (await row()).updatedAt;
      for (const body of [{ enabled: true }, { localTime: '20:45' }, { enabled: true, localTime: '20:45' }]) {
        const same = await suite.call('patch', `/v1/settlement-schedules/${created.id}`, { body });
        expectStatus(same, 200);
        expect(same.body).toMatchObject({ localTime: '20:45', enabled: true });
      }
      expect((await row()).updatedAt).toEqual(since);
      // A real change still counts from its moment.
      expectStatus(await suite.call('patch', `/v1/settlement-schedules/${created.id}`, { body: { enabled: true, localTime: '20:50' } }), 200);
      expect((await row()).updatedAt.getTime()).toBeGreaterThan(since.getTime());
      expectStatus(await suite.call('delete', `/v1/settlement-schedules/${created.id}`), 204);
    });

    it('validates bodies, queries and ids with 400 naming the fields', async () => {
      expectInvalid(await suite.call('post', '/v1/settlement-schedules', { body: {} }), 'localTime');
      expectInvalid(await suite.call('post', '/v1/settlement-schedules', { body: { localTime: '23:00' } }), 'storeId');
      expectInvalid(
        await suite.call('post', '/v1/settlement-schedules', {
          body: { storeId, terminalId, localTime: '23:00' },
        }),
        'terminalId',
      );
      expectInvalid(
        await suite.call('post', '/v1/settlement-schedules', {
          body: { storeId, localTime: '24:00' },
        }),
        'localTime',
      );
      expectInvalid(
        await suite.call('post', '/v1/settlement-schedules', {
          body: { storeId: 'shop', localTime: '23:00' },
        }),
        'storeId',
      );
      expectInvalid(await suite.call('patch', `/v1/settlement-schedules/${schedule.id}`, { body: {} }), '(body)');
      expectInvalid(await suite.call('patch', `/v1/settlement-schedules/${schedule.id}`, { body: { storeId } }), '(body)');
      expectInvalid(await suite.call('get', '/v1/settlement-schedules', { query: { storeId: '1' } }), 'storeId');
    });

    it('answers 404 for an unknown schedule, store or terminal and for those of another tenant', async () => {
      await expectIdsChecked(
        suite,
        [
          { method: 'get', path: (id) => `/v1/settlement-schedules/${id}` },
          {
            method: 'patch',
            path: (id) => `/v1/settlement-schedules/${id}`,
            body: { enabled: false },
          },
          { method: 'delete', path: (id) => `/v1/settlement-schedules/${id}` },
        ],
        { otherTenants: scheduleOfB },
      );
      for (const body of [{ storeId: UNKNOWN_ID }, { storeId: storeOfB }, { terminalId: terminalOfB }]) {
        expectNotFound(
          await suite.call('post', '/v1/settlement-schedules', {
            body: { ...body, localTime: '23:00' },
          }),
        );
      }
      expect(
        await suite.session.owner.settlementSchedule.findUniqueOrThrow({
          where: { id: scheduleOfB },
        }),
      ).toMatchObject({ localTime: '01:00', enabled: true });
    });

    /**
     * A terminal is settled once per business day (one job id and settlement key per terminal and day): a second enabled
     * schedule of a store (14:00 and 23:00) fired into a day already settled, leaving the rest of the day's operations
     * to the next business day. The API accepted it silently.
     */
    describe('one enabled schedule per store and per terminal', () => {
      const schedules = '/v1/settlement-schedules';
      let storeOnly: string;
      let terminalOnly: string;

      beforeAll(async () => {
        storeOnly = (await suite.create('/v1/stores', { name: 'One schedule', timeZone: 'Europe/Moscow' })).id;
        terminalOnly = (await suite.create('/v1/terminals', { name: 'POS 2', storeId: storeOnly, protocol: 'joinproto', connection })).id;
      });

      /** 409 CONFLICT `settlement_schedule_exists` naming the enabled schedule to change instead. */
      function expectExists(res: Awaited<ReturnType<typeof suite.call>>, scheduleId: string): void {
        expectError(res, 409, 'CONFLICT');
        expect(res.body.error.details).toEqual({ reason: 'settlement_schedule_exists', scheduleId });
        expect(res.body.error.message).toContain(`PATCH /v1/settlement-schedules/${scheduleId}`);
      }
      const enabledOf = async (where: { storeId?: string; terminalId?: string }) =>
        (await suite.session.owner.settlementSchedule.findMany({ where: { ...where, enabled: true }, select: { id: true } })).map((r) => r.id);

      it('refuses a second enabled schedule of a store with 409 naming the first', async () => {
        expectExists(await suite.call('post', schedules, { body: { storeId, localTime: '14:00' } }), schedule.id);
        expect(await enabledOf({ storeId })).toEqual([schedule.id]);
      });

      it("refuses a second enabled schedule of a terminal; a terminal's own schedule next to its store's is an override (201)", async () => {
        const own = await suite.create(schedules, { terminalId, localTime: '20:00' });
        try {
          expectExists(await suite.call('post', schedules, { body: { terminalId, localTime: '23:00' } }), own.id);
          expect(await enabledOf({ terminalId })).toEqual([own.id]);
        } finally {
          expectStatus(await suite.call('delete', `${schedules}/${own.id}`), 204);
        }
      });

      it('counts enabled schedules only: a disabled one is accepted, enabling it is 409, changing or disabling it is fine', async () => {
        const spare = await suite.create(schedules, { storeId, localTime: '14:00', enabled: false });
        try {
          expectExists(await suite.call('patch', `${schedules}/${spare.id}`, { body: { enabled: true } }), schedule.id);
          expectExists(await suite.call('patch', `${schedules}/${spare.id}`, { body: { enabled: true, localTime: '15:00' } }), schedule.id);
          const moved = await suite.call('patch', `${schedules}/${spare.id}`, { body: { localTime: '15:00', enabled: false } });
          expectStatus(moved, 200);
          expect(moved.body).toMatchObject({ localTime: '15:00', enabled: false });
          expect(await enabledOf({ storeId })).toEqual([schedule.id]);
          // Once the store's enabled schedule is disabled, the other one may be enabled.
          expectStatus(await suite.call('patch', `${schedules}/${schedule.id}`, { body: { enabled: false } }), 200);
          expectStatus(await suite.call('patch', `${schedules}/${spare.id}`, { body: { enabled: true } }), 200);
          expectExists(await suite.call('patch', `${schedules}/${schedule.id}`, { body: { enabled: true } }), spare.id);
        } finally {
          expectStatus(await suite.call('delete', `${schedules}/${spare.id}`), 204);
          expectStatus(await suite.call('patch', `${schedules}/${schedule.id}`, { body: { enabled: true } }), 200);
        }
      });

      it('gives one 201 and one 409 to two creations for one store at once, and to two for one terminal', async () => {
        for (const scope of [{ storeId: storeOnly }, { terminalId: terminalOnly }]) {
          const answers = await Promise.all(['14:00', '23:00'].map((localTime) => suite.call('post', schedules, { body: { ...scope, localTime } })));
          expect(answers.map((r) => r.status).sort()).toEqual([201, 409]);
          const created = answers.find((r) => r.status === 201)!;
          expectExists(
            answers.find((r) => r.status === 409)!,
            created.body.id,
          );
          expect(await enabledOf(scope)).toEqual([created.body.id]);
        }
      });
    });

    it('refuses a read-only key on every mutating route (403)', async () => {
      await expectWritesForbidden(
        suite,
        [
          {
            method: 'post',
            path: '/v1/settlement-schedules',
            body: { storeId, localTime: '20:00' },
          },
          {
            method: 'patch',
            path: `/v1/settlement-schedules/${schedule.id}`,
            body: { enabled: false },
          },
          { method: 'delete', path: `/v1/settlement-schedules/${schedule.id}` },
        ],
        'settlements:write',
      );
      expect(
        await suite.session.owner.settlementSchedule.findUniqueOrThrow({
          where: { id: schedule.id },
        }),
      ).toMatchObject({ localTime: '23:30', enabled: true });
    });
  });
});
