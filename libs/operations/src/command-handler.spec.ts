import type { Database } from '@payorch/db';
import { KeyedSerialQueue } from '@payorch/domain';
import type { TerminalDriver } from '@payorch/drivers';

import { OperationCommandHandler } from './command-handler';

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
});
