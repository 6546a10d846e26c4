import type { ExecuteHooks, OperationOutcome, TerminalDriver } from '@payorch/drivers';

/** A driver whose `execute` is `run` (the executor's hooks, then an outcome); tests only. */
export function fakeDriver(run: (hooks: ExecuteHooks) => Promise<OperationOutcome>): TerminalDriver {
  return {
    protocol: 'JOINPROTO',
    execute: (_command, hooks) => run(hooks),
    cancel: async () => 'not_running',
    recover: async () => ({ state: 'unknown' }),
    terminalInfo: async () => ({}),
    close: async () => undefined,
  };
}
