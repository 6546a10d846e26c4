import type { TransactionClient } from '@payorch/db';

import { canTransition, type OperationStateName, TRANSITIONS } from './state-machine';
import { OperationTransitionError, transitionOperation } from './transition';

const STATES = Object.keys(TRANSITIONS) as OperationStateName[];
const PAIRS = STATES.flatMap((from) => STATES.map((to) => ({ from, to })));

const textOf = (value: unknown): string => (value !== null && typeof value === 'object' && 'sql' in value ? String((value as { sql: string }).sql) : '?');

/** A transaction client that records raw statements and answers "no row matched". */
function recordingTx() {
  const statements: string[] = [];
  const tx = {
    // A tagged template: the literal parts, then the values (nested Prisma.sql fragments carry their own text).
    $queryRaw: async (strings: readonly string[], ...values: unknown[]) => {
      statements.push(strings.map((s, i) => s + (i < values.length ? textOf(values[i]) : '')).join(''));
      return [];
    },
  } as unknown as TransactionClient;
  return { tx, statements };
}

describe(transitionOperation.name, () => {
  it.each(PAIRS.filter(({ from, to }) => !canTransition(from, to)))('refuses $from → $to before touching the database', async ({ from, to }) => {
    const { tx, statements } = recordingTx();
    await expect(transitionOperation(tx, { operationId: 'x', from: [from], to, step: { kind: 'transition' } })).rejects.toMatchObject({
      code: 'ILLEGAL_TRANSITION',
    });
    expect(statements).toEqual([]);
  });

  it.each(PAIRS.filter(({ from, to }) => canTransition(from, to)))('writes $from → $to with one compare-and-set statement', async ({ from, to }) => {
    const { tx, statements } = recordingTx();
    expect(await transitionOperation(tx, { operationId: 'x', from: [from], to, step: { kind: 'transition', event: 'operation.progress' } })).toBeNull();
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatch(/FOR UPDATE[\s\S]*UPDATE "TerminalOperation"[\s\S]*INSERT INTO "OperationEvent"/);
  });

  it('refuses a list of sources when one of them cannot reach the target', async () => {
    const { tx, statements } = recordingTx();
    await expect(transitionOperation(tx, { operationId: 'x', from: ['SENT', 'PENDING'], to: 'UNKNOWN', step: { kind: 'transition' } })).rejects.toThrow(
      'PENDING → UNKNOWN is not a transition',
    );
    expect(statements).toEqual([]);
  });

  it('refuses columns it does not own, an empty source list, and refs set and merged at once', async () => {
    const { tx, statements } = recordingTx();
    const write = (extra: object) => transitionOperation(tx, { operationId: 'x', from: ['SENT'], to: 'APPROVED', step: { kind: 'transition' }, ...extra });
    await expect(write({ set: { state: 'FAILED' } })).rejects.toBeInstanceOf(OperationTransitionError);
    await expect(write({ set: { tenantId: 'y' } })).rejects.toMatchObject({ code: 'INVALID_WRITE' });
    await expect(write({ from: [] })).rejects.toMatchObject({ code: 'INVALID_WRITE' });
    await expect(write({ set: { protocolRefs: {} }, mergeRefs: { rrn: '1' } })).rejects.toMatchObject({ code: 'INVALID_WRITE' });
    expect(statements).toEqual([]);
  });

  it('keeps completedAt NULL exactly while the operation is open: refused on a move to an open state, set on a move to a final one', async () => {
    const { tx, statements } = recordingTx();
    await expect(
      transitionOperation(tx, { operationId: 'x', from: ['SENT'], to: 'UNKNOWN', set: { completedAt: new Date() }, step: { kind: 'transition' } }),
    ).rejects.toMatchObject({ code: 'INVALID_WRITE' });
    expect(statements).toEqual([]);
    await transitionOperation(tx, { operationId: 'x', from: ['SENT'], to: 'APPROVED', step: { kind: 'transition' } });
    await transitionOperation(tx, { operationId: 'x', from: ['SENT'], to: 'IN_PROGRESS', step: { kind: 'transition' } });
    expect(statements.map((s) => /"completedAt" = COALESCE\(o\."completedAt", clock_timestamp\(\)\)/.test(s))).toEqual([true, false]);
  });
});
