import { connect, type Socket } from 'node:net';

import { createDriver, type DriverOptions, type ExecuteHooks, type OperationOutcome, type TerminalDriver } from '@payorch/drivers';

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

/** A link to a terminal (a simulator) listening on 127.0.0.1:`port`; tests only. */
export const tcpLink = (port: number) => (): Promise<Socket> =>
  new Promise<Socket>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });

/**
 * The production Joinproto driver of the terminal row `terminalRowId`, linked to a simulator on 127.0.0.1:`port` (`device`:
 * its DriverConfig.device, when the test tracks it); tests only.
 */
export function joinprotoDriverTo(terminalRowId: string, port: number, options?: DriverOptions, device?: string): TerminalDriver {
  return createDriver({
    terminalRowId,
    ...(device === undefined ? {} : { device }),
    protocol: 'JOINPROTO',
    dialect: null,
    terminalId: null,
    merchantId: null,
    department: null,
    credentials: null,
    link: tcpLink(port),
    ...(options === undefined ? {} : { options }),
  });
}
