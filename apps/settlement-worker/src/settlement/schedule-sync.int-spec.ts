import type { Logger } from '@payorch/logging';

import { LOGGER } from '../tokens';
import { ScheduleSyncService } from './schedule-sync.service';
import { FakeSettlementRunner } from './testing/fake-runner.testing';
import { SettlementHarness } from './testing/settlement-harness.testing';

const DUPLICATES = /has \d+ enabled settlement schedules/;

/**
 * A terminal is settled once per business day, so a second enabled schedule of a store or a terminal settles nothing
 * (its firing finds the day settled) and the rest of the day goes to the next business day. The API refuses them now;
 * those made before must show: the schedule sync warns of each such store or terminal, naming its schedules.
 */
describe('schedule sync: stores and terminals with several enabled schedules are reported (real BullMQ, Redis, PostgreSQL)', () => {
  const h = new SettlementHarness({
    prefix: 'schedule-sync',
    env: { SETTLEMENT_SYNC_INTERVAL_MS: '600000', SCHEDULE_RECONCILE_INTERVAL_MS: '600000', SETTLEMENT_SWEEP_INTERVAL_MS: '3600000' },
    poolSize: 2,
    runner: (db) => new FakeSettlementRunner(db, 1),
  });
  let tenantId: string;

  beforeAll(async () => {
    ({ tenantId } = await h.start());
  }, 60_000);

  afterAll(() => h.stop());

  const schedule = async (scope: { storeId: string } | { terminalId: string }, localTime: string, enabled = true) =>
    (await h.owner.settlementSchedule.create({ data: { tenantId, ...scope, localTime, enabled } })).id;
  const sorted = (ids: string[]) => [...ids].sort();

  /** The duplicate warnings of one sync, as `{ storeId, terminalId, scheduleIds }`. */
  async function warningsOfSync(): Promise<Array<Record<string, unknown>>> {
    const warn = jest.spyOn(h.app.get<Logger>(LOGGER), 'warn');
    try {
      await h.app.get(ScheduleSyncService).sync();
      return warn.mock.calls
        .filter((call) => DUPLICATES.test(String(call[1])))
        .map((call) => {
          const { tenantId: tenant, storeId, terminalId, scheduleIds } = call[0] as unknown as Record<string, unknown>;
          expect(tenant).toBe(tenantId);
          return { storeId, terminalId, scheduleIds };
        });
    } finally {
      warn.mockRestore();
    }
  }

  it('warns once per store or terminal with several enabled schedules, naming them, and again when they change', async () => {
    const twice = await h.store('Two a day', 'Europe/Moscow');
    const once = await h.store('Once a day', 'Europe/Moscow');
    const till = (await h.terminal(once, 'till')).id;
    const other = (await h.terminal(once, 'other')).id;
    const storeTwice = [await schedule({ storeId: twice }, '14:00'), await schedule({ storeId: twice }, '23:00')];
    // One enabled schedule per scope: a disabled one next to it, and a terminal's own next to its store's (an override).
    await schedule({ storeId: once }, '23:00');
    await schedule({ storeId: once }, '14:00', false);
    await schedule({ terminalId: till }, '22:00');
    const terminalTwice = [await schedule({ terminalId: other }, '13:00'), await schedule({ terminalId: other }, '21:00')];

    const first = await warningsOfSync();
    expect(first).toHaveLength(2);
    expect(first).toEqual(
      expect.arrayContaining([
        { storeId: twice, terminalId: null, scheduleIds: sorted(storeTwice) },
        { storeId: null, terminalId: other, scheduleIds: sorted(terminalTwice) },
      ]),
    );
    // Not again at every sync (SETTLEMENT_SYNC_INTERVAL_MS) while nothing changed.
    expect(await warningsOfSync()).toHaveLength(0);

    // A third one: the store is reported again, with all three.
    storeTwice.push(await schedule({ storeId: twice }, '18:00'));
    expect(await warningsOfSync()).toEqual([{ storeId: twice, terminalId: null, scheduleIds: sorted(storeTwice) }]);

    // Fixed as docs/settlements.md says (all but one disabled or deleted): nothing to report.
    await h.owner.settlementSchedule.updateMany({ where: { id: { in: storeTwice.slice(1) } }, data: { enabled: false } });
    await h.owner.settlementSchedule.delete({ where: { id: terminalTwice[1] } });
    expect(await warningsOfSync()).toHaveLength(0);
  });
});
