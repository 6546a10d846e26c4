import type { TerminalDriver } from '@payorch/drivers';

import { TerminalBusyError, TerminalHandle } from './terminal-handle';
import { linkForConnection, type TerminalRow } from './terminal-link';

const row = { id: 't1', tenantId: 'x', protocol: 'JOINPROTO' } as TerminalRow;

describe(TerminalHandle.name, () => {
  it('runs one command at a time, in order, and lets cancel through while one runs', async () => {
    const log: string[] = [];
    let release!: () => void;
    const driver = {
      protocol: 'JOINPROTO',
      execute: async (cmd: { operationId: string }) => {
        log.push(`start ${cmd.operationId}`);
        if (cmd.operationId === 'a') await new Promise<void>((r) => (release = r));
        log.push(`end ${cmd.operationId}`);
        return { state: 'approved' };
      },
      cancel: async (id: string) => (log.push(`cancel ${id}`), 'requested'),
      close: async () => undefined,
    } as unknown as TerminalDriver;
    const sut = new TerminalHandle(row, 'agent', async () => Promise.reject(new Error('no link')), driver, 2).driver!;
    const hooks = { beforeSend: async () => undefined, onProgress: () => undefined };
    const a = sut.execute({ operationId: 'a', type: 'purchase' }, hooks);
    const b = sut.execute({ operationId: 'b', type: 'purchase' }, hooks);
    await expect(sut.execute({ operationId: 'c', type: 'purchase' }, hooks)).rejects.toBeInstanceOf(TerminalBusyError);
    await new Promise((r) => setImmediate(r));
    expect(await sut.cancel('a')).toBe('requested');
    release();
    await Promise.all([a, b]);
    expect(log).toEqual(['start a', 'cancel a', 'end a', 'start b', 'end b']);
  });
});

describe(linkForConnection.name, () => {
  it('maps the gateway connection kinds to tunnel link descriptors', () => {
    expect(linkForConnection({ kind: 'tcp', host: '10.0.0.5', port: 2000 })).toEqual({ kind: 'tcp-connect', host: '10.0.0.5', port: 2000 });
    expect(linkForConnection({ kind: 'tcp-listen', port: 2001 })).toEqual({ kind: 'tcp-listen', port: 2001 });
    expect(linkForConnection({ kind: 'serial', path: '/dev/ttyUSB0', baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1 })).toEqual({
      kind: 'serial', path: '/dev/ttyUSB0', baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1,
    });
    expect(() => linkForConnection({ kind: 'tcp', host: 'bad host', port: 1 })).toThrow();
  });
});
