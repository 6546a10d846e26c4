import type { Database } from '@payorch/db';
import { KeyedSerialQueue } from '@payorch/domain';
import type { TerminalDriver } from '@payorch/drivers';

import { OperationCommandHandler } from './command-handler';
import { OperationExecutor } from './executor';

const ref = { tenantId: 'tenant', terminalId: 'terminal', operationId: 'op' };

/** A Database that fails the test on any use: proves a command was answered before anything was claimed. */
const untouchable = new Proxy(
  {},
  {
    get: (_target, key) => {
      throw new Error(`the database was used (${String(key)})`);
    },
  },
) as Database;

function driver(log: string[]): TerminalDriver {
  return {
    protocol: 'JOINPROTO',
    execute: async () => ({ state: 'approved' }),
    recover: async () => ({ state: 'approved' }),
    cancel: async (id: string) => (log.push(`cancel ${id}`), 'requested' as const),
    terminalInfo: async () => (log.push('info'), { model: 'T1' }),
    close: async () => undefined,
  };
}

describe(OperationCommandHandler.name, () => {
  it('runs its commands in the queue it is given, and answers TERMINAL_BUSY for a full one without claiming anything', async () => {
    const log: string[] = [];
    const queue = new KeyedSerialQueue({ limit: 2 });
    const sut = new OperationCommandHandler(untouchable, { queue });
    let release!: () => void;
    const running = queue.run(ref.terminalId, () => new Promise<void>((r) => (release = r)).then(() => void log.push('connector command')));

    const info = sut.handle({ kind: 'terminal.refresh_info', tenantId: ref.tenantId, terminalId: ref.terminalId }, driver(log));
    expect(queue.depth(ref.terminalId)).toBe(2);
    expect(await sut.handle({ kind: 'operation.execute', ...ref }, driver(log))).toEqual({
      ok: false,
      code: 'TERMINAL_BUSY',
      message: "the terminal's command queue is full: 2 tasks already queued",
    });
    await expect(sut.recoverTerminal(ref, driver(log), new Date())).rejects.toThrow('2 tasks already queued');
    expect(await sut.handle({ kind: 'operation.cancel', ...ref }, driver(log))).toEqual({ ok: true, result: { cancel: 'requested' } });

    release();
    await running;
    expect(await info).toEqual({ ok: true, result: { model: 'T1' } });
    expect(log).toEqual(['cancel op', 'connector command', 'info']);
  });

  it('runs no pass of recoverTerminal whose signal was aborted while it waited in the queue: nothing is read or asked', async () => {
    const queue = new KeyedSerialQueue();
    const sut = new OperationCommandHandler(untouchable, { queue });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const running = queue.run(ref.terminalId, () => held);
    const closing = new AbortController();
    const pass = sut.recoverTerminal(ref, driver([]), new Date(), { signal: closing.signal });
    closing.abort();
    release();
    await running;
    expect(await pass).toEqual({ neverSent: 0, leftPending: 0, markedUnknown: 0, recovered: 0, stillUnknown: 0 });
  });

  it("sends a cancel to the driver the operation runs on, not to the terminal's driver rebuilt meanwhile, nor to none once the terminal is withdrawn", async () => {
    const log: string[] = [];
    let cancelled!: () => void;
    const old: TerminalDriver = {
      ...driver(log),
      execute: () => new Promise((resolve) => (cancelled = () => resolve({ state: 'canceled' }))),
      cancel: async (id: string) => (log.push(`old driver: cancel ${id}`), cancelled(), 'requested' as const),
    };
    const rebuilt: TerminalDriver = { ...driver(log), cancel: async (id: string) => (log.push(`rebuilt driver: cancel ${id}`), 'not_running' as const) };
    // The executor's run as far as the driver goes (its database work is not what this test is about).
    const execute = jest.spyOn(OperationExecutor.prototype, 'execute').mockImplementation(async (_ref, d) => ({
      ran: true,
      state:
        (await d.execute({ operationId: ref.operationId, type: 'purchase' }, { beforeSend: async () => undefined, onProgress: () => undefined })).state ===
        'canceled'
          ? 'CANCELED'
          : 'FAILED',
    }));
    try {
      const sut = new OperationCommandHandler(untouchable, { queue: new KeyedSerialQueue(), pendingHoldIntervalMs: 60_000 });
      let current: TerminalDriver | null = old;
      const running = sut.handle({ kind: 'operation.execute', ...ref }, () => current);
      await new Promise((resolve) => setImmediate(resolve));
      expect(execute).toHaveBeenCalledTimes(1);
      // The terminal's row changed: the connector rebuilt its driver; the running command stays on the old one.
      current = rebuilt;
      // Another tenant's cancel of the same ids never reaches it.
      expect(await sut.handle({ kind: 'operation.cancel', ...ref, tenantId: 'other-tenant' }, () => current)).toMatchObject({ ok: false, code: 'TOO_LATE' });
      expect(await sut.handle({ kind: 'operation.cancel', ...ref }, () => current)).toEqual({ ok: true, result: { cancel: 'requested' } });
      expect(await running).toEqual({ ok: true, result: { ran: true, state: 'canceled' } });
      expect(log).toEqual(['rebuilt driver: cancel op', 'old driver: cancel op']);
      // Over: a cancel goes to the terminal's driver (or to none: the terminal withdrawn) and is too late.
      current = null;
      expect(await sut.handle({ kind: 'operation.cancel', ...ref }, () => current)).toMatchObject({ ok: false, code: 'TOO_LATE' });
    } finally {
      execute.mockRestore();
    }
  });

  it("hands an operation.execute's copy of its command to the executor, which checks it at its claim", async () => {
    const execute = jest.spyOn(OperationExecutor.prototype, 'execute').mockResolvedValue({ ran: true, state: 'APPROVED' });
    try {
      const sut = new OperationCommandHandler(untouchable, { queue: new KeyedSerialQueue(), pendingHoldIntervalMs: 60_000 });
      const command = { type: 'purchase', amount: 1500, currency: 'RUB' };
      expect(await sut.handle({ kind: 'operation.execute', ...ref, command }, driver([]))).toEqual({ ok: true, result: { ran: true, state: 'approved' } });
      expect(await sut.handle({ kind: 'operation.execute', ...ref }, driver([]))).toEqual({ ok: true, result: { ran: true, state: 'approved' } });
      expect(execute.mock.calls.map((call) => call[2])).toEqual([command, undefined]);
    } finally {
      execute.mockRestore();
    }
  });
});
