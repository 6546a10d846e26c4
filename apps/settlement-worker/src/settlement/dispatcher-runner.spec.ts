import type { Database } from '@payorch/db';
import type { TerminalCommand } from '@payorch/domain';
import { commandCopyOf, type OperationRow } from '@payorch/operations';

import { DispatcherSettlementRunner } from './dispatcher-runner';

const ref = {
  tenantId: '11111111-1111-4111-8111-111111111111',
  terminalId: '22222222-2222-4222-8222-222222222222',
  operationId: '33333333-3333-4333-8333-333333333333',
};

describe(DispatcherSettlementRunner.name, () => {
  it("dispatches the close-day with its command, which is what the settlement's operation row gives (the executor checks it at its claim)", async () => {
    const dispatched: TerminalCommand[] = [];
    const row = {
      ...({} as OperationRow),
      id: ref.operationId,
      type: 'SETTLEMENT',
      amount: null,
      cashbackAmount: null,
      currency: null,
      originalOperationId: null,
    };
    const db = {
      querySql: async () => [{ ...row, state: 'APPROVED' }],
    } as unknown as Database;
    const sut = new DispatcherSettlementRunner(
      {
        dispatch: async (command) => {
          dispatched.push(command);
          return { ok: true, result: { queued: true } };
        },
      },
      db,
    );
    await sut.execute(ref);
    expect(dispatched).toEqual([{ kind: 'operation.execute', ...ref, replyWhen: 'queued', command: { type: 'settlement' } }]);
    expect(commandCopyOf(row as OperationRow)).toEqual({ type: 'settlement' });
  });
});
