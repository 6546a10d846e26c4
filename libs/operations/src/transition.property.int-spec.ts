import { fc, it } from '@fast-check/jest';

import { createPrismaClient, Database, type PrismaClient, type TransactionClient } from '@payorch/db';
import type { FinalState, OperationOutcome, TerminalDriver } from '@payorch/drivers';
import { createTestDatabase, type TestDatabase } from '@payorch/testing';

import { insertOperation } from './create';
import { OperationExecutor } from './executor';
import { recoverOperation } from './recovery';
import { canTransition, FINAL_STATES, type OperationStateName, TRANSITIONS } from './state-machine';
import { failNeverSent, flagForHuman, type ManualResolution, markStuckUnknown, resolveManually } from './supervision';
import { OperationTransitionError, transitionOperation } from './transition';

/**
 * Property (issue #14): whatever sequence of writers' commands runs against an operation — in order or racing
 * each other, with supervisors working from a stale horizon — every write goes through the owner, so in the
 * database: every OperationEvent transition is in TRANSITIONS, the state-changing events form one chain from
 * creation to the stored state, and each state change has exactly one OperationEvent and one DomainEvent.
 * Two operations share a terminal, so the executor's TERMINAL_RECOVERING refusal (issue #15: another operation of the
 * terminal in doubt) is exercised too.
 */

const STATES = Object.keys(TRANSITIONS) as OperationStateName[];
const ILLEGAL = STATES.flatMap((from) => STATES.filter((to) => !canTransition(from, to)).map((to) => ({ from, to })));

type Command =
  | { kind: 'claim' }
  | { kind: 'refs' }
  | { kind: 'progress'; subStatus: string }
  | { kind: 'display' }
  | { kind: 'outcome'; state: FinalState }
  | { kind: 'sweep'; stale: boolean }
  | { kind: 'recover'; answer: FinalState }
  | { kind: 'resolve'; state: ManualResolution }
  | { kind: 'flag' }
  | { kind: 'cancelBeforeSend' }
  | { kind: 'failBeforeSend' }
  | { kind: 'execute'; outcome: FinalState; progress: number }
  | { kind: 'illegal'; from: OperationStateName; to: OperationStateName };

interface Step {
  op: 0 | 1;
  command: Command;
}

const finalState = fc.constantFrom<FinalState>('approved', 'declined', 'canceled', 'failed', 'unknown');
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc.constant({ kind: 'claim' as const }),
  fc.constant({ kind: 'refs' as const }),
  fc.constantFrom('waiting_card', 'waiting_pin', 'processing').map((subStatus) => ({ kind: 'progress' as const, subStatus })),
  fc.constant({ kind: 'display' as const }),
  finalState.map((state) => ({ kind: 'outcome' as const, state })),
  fc.boolean().map((stale) => ({ kind: 'sweep' as const, stale })),
  finalState.map((answer) => ({ kind: 'recover' as const, answer })),
  fc.constantFrom<ManualResolution>('APPROVED', 'DECLINED', 'FAILED').map((state) => ({ kind: 'resolve' as const, state })),
  fc.constant({ kind: 'flag' as const }),
  fc.constant({ kind: 'cancelBeforeSend' as const }),
  fc.constant({ kind: 'failBeforeSend' as const }),
  fc.record({ outcome: finalState, progress: fc.nat({ max: 2 }) }).map((r) => ({ kind: 'execute' as const, ...r })),
  fc.constantFrom(...ILLEGAL).map((pair) => ({ kind: 'illegal' as const, ...pair })),
);
const stepArb: fc.Arbitrary<Step> = fc.record({ op: fc.constantFrom<0 | 1>(0, 1), command: commandArb });
/** A round is one step, or two racing (a second executor, a supervisor, the gateway at the same moment). */
const roundArb = fc.oneof({ arbitrary: stepArb.map((s) => [s]), weight: 3 }, { arbitrary: fc.tuple(stepArb, stepArb), weight: 2 });

describe('transitionOperation (property, real PostgreSQL)', () => {
  let testDb: TestDatabase;
  let owner: PrismaClient;
  let db: Database;
  let executor: OperationExecutor;
  let tenantId: string;
  let storeId: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    db = Database.connect(testDb.appUrl, 6);
    executor = new OperationExecutor(db);
    tenantId = (await owner.tenant.create({ data: { name: 'T' } })).id;
    storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
  });

  afterAll(async () => {
    await db.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  /** A terminal that answers from a script: refs before the "bytes", progress, then the scripted outcome. */
  function scriptedDriver(outcome: FinalState, progress: number, recoverWith: FinalState = 'unknown'): TerminalDriver {
    return {
      protocol: 'JOINPROTO',
      execute: async (_command, hooks) => {
        try {
          await hooks.beforeSend({ df01: '000001', command: 'Purchase' });
        } catch (error) {
          return { state: 'failed', reason: `not sent: ${(error as Error).message}` };
        }
        for (let i = 0; i < progress; i++)
          hooks.onProgress(i % 2 === 0 ? { kind: 'status', subStatus: 'waiting_card' } : { kind: 'display', text: 'INSERT CARD' });
        return outcomeOf(outcome);
      },
      cancel: async () => 'not_running',
      recover: async () => outcomeOf(recoverWith),
      terminalInfo: async () => ({}),
      close: async () => undefined,
    };
  }

  const outcomeOf = (state: FinalState): OperationOutcome =>
    state === 'approved'
      ? { state, rrn: '123456789012', approvalCode: 'A1', maskedPan: '220000******0001', protocolRefs: { rrn: '123456789012' } }
      : { state, reason: state };

  async function run(operationId: string, command: Command, horizon: Date): Promise<void> {
    const ref = { tenantId, operationId };
    const inTx = <T>(fn: (tx: TransactionClient) => Promise<T>) => db.withTenant(tenantId, fn);
    switch (command.kind) {
      case 'claim': // the executor's claim
        await inTx((tx) =>
          transitionOperation(tx, {
            operationId,
            from: ['PENDING'],
            to: 'SENT',
            unlessTerminalInDoubt: true,
            step: { kind: 'transition', event: 'operation.progress' },
          }),
        );
        return;
      case 'refs': // the executor's beforeSend
        await inTx((tx) =>
          transitionOperation(tx, { operationId, from: ['SENT', 'IN_PROGRESS'], to: null, set: { protocolRefs: { df01: '000001' } }, step: { kind: 'refs' } }),
        );
        return;
      case 'progress':
        await inTx((tx) =>
          transitionOperation(tx, {
            operationId,
            from: ['SENT', 'IN_PROGRESS'],
            to: 'IN_PROGRESS',
            set: { subStatus: command.subStatus },
            step: { kind: 'progress', event: 'operation.progress' },
          }),
        );
        return;
      case 'display':
        await inTx((tx) =>
          transitionOperation(tx, {
            operationId,
            from: ['SENT', 'IN_PROGRESS'],
            to: null,
            step: { kind: 'progress', data: { text: 'PIN' }, event: 'operation.progress' },
          }),
        );
        return;
      case 'outcome':
        await executor.storeOutcome(ref, outcomeOf(command.state), 'completed');
        return;
      case 'sweep': {
        // The recovery sweep; a stale one computed its horizon before the writes that followed it.
        const olderThan = command.stale ? horizon : new Date(Date.now() + 60_000);
        await inTx(async (tx) => {
          const row = await tx.terminalOperation.findUniqueOrThrow({ where: { id: operationId }, select: { state: true } });
          return row.state === 'PENDING' ? failNeverSent(tx, operationId, olderThan, 'never sent') : markStuckUnknown(tx, operationId, olderThan, 'stuck');
        });
        return;
      }
      case 'recover':
        await recoverOperation(db, executor, scriptedDriver('unknown', 0, command.answer), ref);
        return;
      case 'resolve':
        await inTx((tx) => resolveManually(tx, operationId, { state: command.state, note: 'journal', actor: { type: 'api_key', id: null } }));
        return;
      case 'flag':
        await inTx((tx) => flagForHuman(tx, operationId, 3));
        return;
      case 'cancelBeforeSend': // the gateway's cancel of a PENDING operation
        await inTx((tx) =>
          transitionOperation(tx, {
            operationId,
            from: ['PENDING'],
            to: 'CANCELED',
            set: { stateReason: 'canceled', completedAt: new Date() },
            step: { kind: 'transition', event: 'operation.completed' },
          }),
        );
        return;
      case 'failBeforeSend': // the gateway's "could not dispatch"
        await inTx((tx) =>
          transitionOperation(tx, {
            operationId,
            from: ['PENDING'],
            to: 'FAILED',
            set: { error: { code: 'TIMEOUT' }, completedAt: new Date() },
            step: { kind: 'transition', event: 'operation.completed' },
          }),
        );
        return;
      case 'execute':
        await executor.execute(ref, scriptedDriver(command.outcome, command.progress));
        return;
      case 'illegal': {
        // Refused before the database is touched: this transaction client throws if it is used at all.
        const untouchable = new Proxy(
          {},
          {
            get: () => {
              throw new Error('the database was touched');
            },
          },
        ) as TransactionClient;
        await expect(
          transitionOperation(untouchable, { operationId, from: [command.from], to: command.to, step: { kind: 'transition' } }),
        ).rejects.toBeInstanceOf(OperationTransitionError);
        return;
      }
    }
  }

  async function checkInvariants(operationId: string): Promise<void> {
    const row = await owner.terminalOperation.findUniqueOrThrow({ where: { id: operationId }, select: { state: true, completedAt: true } });
    // 0. A completion time exactly when final (the partial index of open operations relies on it).
    expect({ state: row.state, completed: row.completedAt !== null }).toEqual({ state: row.state, completed: FINAL_STATES.includes(row.state) });
    const events = await owner.operationEvent.findMany({ where: { operationId }, select: { kind: true, fromState: true, toState: true } });
    const published = await owner.domainEvent.findMany({ where: { subjectId: operationId }, select: { type: true, data: true } });

    // 1. Every recorded transition is in the table (creation: null → PENDING; annotations: null → null).
    for (const e of events) {
      if (e.fromState === null) expect([e.kind, e.toState === null || e.toState === 'PENDING']).toEqual([e.kind, true]);
      else expect({ ...e, allowed: e.toState !== null && canTransition(e.fromState, e.toState) }).toEqual({ ...e, allowed: true });
    }
    // 2. The state changes form one chain from creation, ending in the stored state.
    const changes = events.filter((e) => e.toState !== null && e.fromState !== e.toState);
    let current: OperationStateName | null = null;
    for (let used = 0; used < changes.length; used++) {
      const next = changes.filter((e) => e.fromState === current);
      expect(next).toHaveLength(1);
      current = next[0]!.toState;
    }
    expect(current).toBe(row.state);
    // 3. One DomainEvent per state change, and none that claims a change no OperationEvent recorded.
    const eventPairs = published
      .map((p) => p.data as { state?: string; previousState?: string | null })
      .filter((d) => d.previousState !== undefined && d.previousState !== d.state)
      .map((d) => `${d.previousState ?? 'null'}→${d.state}`)
      .sort();
    const changePairs = changes.map((e) => `${e.fromState?.toLowerCase() ?? 'null'}→${e.toState!.toLowerCase()}`).sort();
    expect(eventPairs).toEqual(changePairs);
  }

  it.prop([fc.array(roundArb, { minLength: 1, maxLength: 12 })], { numRuns: 50 })(
    'keeps the event log and the stored state consistent under any sequence and race of writers',
    async (rounds) => {
      const terminalId = (await owner.terminal.create({ data: { tenantId, storeId, name: 'POS', protocol: 'JOINPROTO', connection: {} } })).id;
      const ops: string[] = [];
      for (let i = 0; i < 2; i++) {
        const { row } = await db.withTenant(tenantId, (tx) =>
          insertOperation(tx, {
            tenantId,
            terminalId,
            storeId,
            type: 'purchase',
            amount: 100 + i,
            currency: 'RUB',
            idempotencyKey: `${terminalId}-${i}`,
            requestHash: 'h',
          }),
        );
        ops.push(row.id);
      }
      const horizon = new Date();
      for (const round of rounds) await Promise.all(round.map((step) => run(ops[step.op]!, step.command, horizon)));
      for (const id of ops) await checkInvariants(id);
    },
    60_000,
  );
});
