import { existsSync } from 'node:fs';
import path from 'node:path';

import { findStateWriters, STATE_OWNERS, stateWritesIn, testSupportImports } from './testing/state-writers';

const ROOT = path.resolve(__dirname, '../../..');
const describeWrite = (w: { file: string; line: number; what: string }) => `${w.file}:${w.line} ${w.what}`;

/**
 * One owner for each state (issue #14): TerminalOperation.state, WalletPayment.state and Settlement.status are
 * written only by their owners (STATE_OWNERS), which check the transition table and write the events.
 */
describe('state ownership (architecture)', () => {
  it('no source file outside the owners writes an operation, wallet payment, settlement or campaign state', () => {
    expect(findStateWriters(ROOT).map(describeWrite)).toEqual([]);
  });

  it('the owners are where the rule says', () => {
    for (const file of Object.values(STATE_OWNERS).flat()) expect(existsSync(path.join(ROOT, file))).toBe(true);
  });

  it('production code does not import test support (testing/ folders, *.testing modules)', () => {
    expect(testSupportImports(ROOT).map(describeWrite)).toEqual([]);
  });

  describe(stateWritesIn.name, () => {
    const file = 'apps/x/src/x.service.ts';

    it.each([
      [
        "tx.terminalOperation.updateMany({ where: { id, state: 'PENDING' }, data: { state: 'CANCELED', completedAt: new Date() } })",
        'prisma terminalOperation.updateMany: sets state',
      ],
      ['tx.terminalOperation.update({ where: { id }, data: { state } })', 'prisma terminalOperation.update: sets state'],
      [
        'tx.walletPayment.updateMany({ where: { id, state: { in: from } }, data: rowDataOfChange(change) })',
        'prisma walletPayment.updateMany: data is not an object literal',
      ],
      [
        'tx.walletPayment.updateMany({ where: { id }, data: { ...rowDataOfChange(change), resolutionAttempts: { increment: 1 } } })',
        'prisma walletPayment.updateMany: spreads into data (may carry the state)',
      ],
      ["tx.settlement.updateMany({ where: { id, status: 'RUNNING' }, data: { status: 'COMPLETED' } })", 'prisma settlement.updateMany: sets status'],
      ["tx.settlement.create({ data: { tenantId, runKey, status: 'PENDING' } })", 'prisma settlement.create (creates a row, and so its status)'],
      ["tx.terminalOperation.create({ data: { tenantId, type: 'SETTLEMENT' } })", 'prisma terminalOperation.create (creates a row, and so its state)'],
      ['tx.settlement.upsert({ where, create: {}, update: {} })', 'prisma settlement.upsert (creates a row, and so its status)'],
      [
        'tx.$executeRaw`UPDATE "TerminalOperation" SET "state" = ${s}::"OperationState" WHERE "id" = ${id}::uuid`',
        'raw SQL UPDATE "TerminalOperation" SET state',
      ],
      ['db.$executeRawUnsafe(`update "WalletPayment" w set state = \'APPROVED\' where id = $1`, id)', 'raw SQL UPDATE "WalletPayment" SET state'],
      ['tx.$queryRaw`INSERT INTO "Settlement" ("id") VALUES (${id})`', 'raw SQL INSERT INTO "Settlement"'],
      ["tx.campaignTarget.updateMany({ where: { campaignId }, data: { state: 'SKIPPED' } })", 'prisma campaignTarget.updateMany: sets state'],
      ['tx.$executeRaw`UPDATE "Campaign" SET "state" = \'PAUSED\' WHERE "id" = ${id}::uuid`', 'raw SQL UPDATE "Campaign" SET state'],
      ['tx.$executeRaw`INSERT INTO "CampaignTarget" ("id") VALUES (${id})`', 'raw SQL INSERT INTO "CampaignTarget"'],
      ["tx.campaignWave.create({ data: { tenantId, index: 0, state: 'PENDING' } })", 'prisma campaignWave.create (creates a row, and so its state)'],
      ["tx.walletPayment.update({ where: { id }, data: { resolution: { by: 'human' } } })", 'prisma walletPayment.update: sets resolution'],
      [
        'tx.$executeRaw`UPDATE "WalletPaymentOperation" SET "resolution" = ${r}::jsonb WHERE "id" = ${id}::uuid`',
        'raw SQL UPDATE "WalletPaymentOperation" SET resolution',
      ],
    ])('reports %s', (code, what) => {
      expect(stateWritesIn(file, code)).toEqual([{ file, line: 1, what }]);
    });

    it.each([
      ['tx.terminalOperation.updateMany({ where: { id: { in: ids }, settlementId: null }, data: { settlementId } })'],
      ["tx.settlement.update({ where: { id }, data: { operationId: op.id, progress: { step: 'close_sent', at: new Date().toISOString() } } })"],
      ["tx.terminalOperation.findMany({ where: { state: 'UNKNOWN' } })"],
      ['tx.$queryRaw`UPDATE "Terminal" SET "protocolSequence" = 1 WHERE "id" = ${id}`'],
      ['tx.$queryRaw`UPDATE "TerminalOperation" SET "recoveryAttempts" = 0 WHERE "state" = \'UNKNOWN\'`'],
    ])('leaves alone %s', (code) => {
      expect(stateWritesIn(file, code)).toEqual([]);
    });

    it('lets the owner write', () => {
      const code = 'tx.$queryRaw`UPDATE "TerminalOperation" o SET "state" = ${to}::"OperationState" FROM previous`';
      expect(stateWritesIn('libs/operations/src/transition.ts', code)).toEqual([]);
      expect(stateWritesIn('libs/operations/src/executor.ts', code)).toHaveLength(1);
    });
  });
});
