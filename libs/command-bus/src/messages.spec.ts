import { parseCommand } from './messages';

const ids = {
  tenantId: '11111111-1111-4111-8111-111111111111',
  terminalId: '22222222-2222-4222-8222-222222222222',
  operationId: '33333333-3333-4333-8333-333333333333',
};

describe(parseCommand.name, () => {
  it("keeps an operation.execute's copy of its command (issue 19: the executor checks it at its claim instead of reading the row)", () => {
    const command = { type: 'purchase_with_cashback', amount: 1500, cashbackAmount: 500, currency: 'RUB' };
    expect(parseCommand(JSON.stringify({ kind: 'operation.execute', ...ids, replyWhen: 'queued', command }))).toEqual({
      kind: 'operation.execute',
      ...ids,
      replyWhen: 'queued',
      command,
    });
    expect(parseCommand(JSON.stringify({ kind: 'operation.execute', ...ids, command: { type: 'terminal_info' } }))).toEqual({
      kind: 'operation.execute',
      ...ids,
      command: { type: 'terminal_info' },
    });
  });

  it.each([
    ['an amount that is not an integer of minor units', { type: 'purchase', amount: 15.5 }],
    ['a negative amount', { type: 'purchase', amount: -1 }],
    ['an amount beyond a safe integer', { type: 'purchase', amount: 2 ** 53 }],
    ['an amount as text', { type: 'purchase', amount: '1500' }],
    ['a cashback that is not a number', { type: 'purchase_with_cashback', amount: 1, cashbackAmount: null }],
    ['a currency that is not ISO 4217 alphabetic', { type: 'purchase', amount: 1, currency: 'rub' }],
    ['a type that is not one', { type: 'Purchase; DROP', amount: 1 }],
    ['no type', { amount: 1 }],
    ['an array', [1, 2]],
    ['text', 'purchase'],
  ])('drops a copy with %s, and keeps the command (its executor reads the row)', (_case, command) => {
    expect(parseCommand(JSON.stringify({ kind: 'operation.execute', ...ids, replyWhen: 'queued', command }))).toEqual({
      kind: 'operation.execute',
      ...ids,
      replyWhen: 'queued',
    });
  });

  it('carries no copy on the other commands', () => {
    const command = { type: 'purchase', amount: 1 };
    expect(parseCommand(JSON.stringify({ kind: 'operation.recover', ...ids, command }))).toEqual({ kind: 'operation.recover', ...ids });
    expect(parseCommand(JSON.stringify({ kind: 'operation.cancel', ...ids, command }))).toEqual({ kind: 'operation.cancel', ...ids });
  });
});
