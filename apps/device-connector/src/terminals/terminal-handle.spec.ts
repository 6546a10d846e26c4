import { KeyedSerialQueue, QueueFullError } from '@payorch/domain';
import type { TerminalDriver } from '@payorch/drivers';

import { TerminalHandle } from './terminal-handle';
import { linkForConnection, type TerminalRow } from './terminal-link';

const row = { id: 't1', tenantId: 'x', protocol: 'JOINPROTO' } as TerminalRow;
const noLink = async () => Promise.reject(new Error('no link'));
const hooks = { beforeSend: async () => undefined, onProgress: () => undefined };

/** A driver whose execute of `hold` waits until released; everything it does is logged. */
function fakeDriver(log: string[], hold: string) {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const driver = {
    protocol: 'JOINPROTO',
    execute: async (cmd: { operationId: string }) => {
      log.push(`start ${cmd.operationId}`);
      if (cmd.operationId === hold) {
        started();
        await held;
      }
      log.push(`end ${cmd.operationId}`);
      return { state: 'approved' };
    },
    cancel: async (id: string) => (log.push(`cancel ${id}`), 'requested'),
    close: async () => void log.push('close'),
  } as unknown as TerminalDriver;
  return { driver, release, running };
}

describe(TerminalHandle.name, () => {
  it('runs one command at a time, in order, refuses past the limit and lets cancel through while one runs', async () => {
    const log: string[] = [];
    const { driver, release, running } = fakeDriver(log, 'a');
    const sut = new TerminalHandle(row, 'agent', noLink, driver, new KeyedSerialQueue({ limit: 2 }));
    const a = sut.run(() => driver.execute({ operationId: 'a', type: 'purchase' }, hooks));
    const b = sut.run(() => driver.execute({ operationId: 'b', type: 'purchase' }, hooks));
    await expect(sut.run(() => driver.execute({ operationId: 'c', type: 'purchase' }, hooks))).rejects.toBeInstanceOf(QueueFullError);
    await running;
    expect(await sut.driver!.cancel('a')).toBe('requested');
    release();
    await Promise.all([a, b]);
    expect(log).toEqual(['start a', 'cancel a', 'end a', 'start b', 'end b']);
  });

  it("retired (rebuilt for a changed row): takes no new work, lets the running command finish, and closes its driver before the terminal's next command", async () => {
    const log: string[] = [];
    const { driver, release, running } = fakeDriver(log, 'a');
    const rebuiltDriver = fakeDriver(log, '').driver;
    const queue = new KeyedSerialQueue();
    const old = new TerminalHandle(row, 'agent', noLink, driver, queue);
    const a = old.run(() => driver.execute({ operationId: 'a', type: 'purchase' }, hooks));
    await running;
    // A command already waiting in the terminal's queue takes the driver at its turn (the rebuilt one by then).
    const rebuilt = new TerminalHandle(row, 'agent', noLink, rebuiltDriver, queue);
    let current = old;
    const waiting = queue.run(row.id, () => current.driver!.execute({ operationId: 'w', type: 'purchase' }, hooks));
    // Work queued through the old handle itself (its link probe, its info read) is dropped at its turn.
    const probe = old.run(() => driver.execute({ operationId: 'p', type: 'purchase' }, hooks));
    const retired = old.retire();
    current = rebuilt;
    await expect(old.run(async () => 'late')).rejects.toThrow('terminal handle closed');
    expect(old.closed.aborted).toBe(true);
    const b = rebuilt.run(() => rebuiltDriver.execute({ operationId: 'b', type: 'purchase' }, hooks));
    expect(queue.depth(row.id)).toBe(5);
    expect(log).toEqual(['start a']);
    release();
    await expect(a).resolves.toEqual({ state: 'approved' });
    await retired;
    await expect(probe).rejects.toThrow('terminal handle closed');
    await Promise.all([waiting, b]);
    expect(log).toEqual(['start a', 'end a', 'close', 'start w', 'end w', 'start b', 'end b']);
    await old.close();
    expect(log.filter((entry) => entry === 'close')).toHaveLength(1);
  });

  it('retired with nothing running: closes its driver at once', async () => {
    const log: string[] = [];
    const { driver } = fakeDriver(log, '');
    const sut = new TerminalHandle(row, 'agent', noLink, driver, new KeyedSerialQueue());
    await sut.retire();
    expect(log).toEqual(['close']);
  });

  it('closed (its tunnel gone): closes its driver at once, under the running command, and refuses new work', async () => {
    const log: string[] = [];
    const { driver, release, running } = fakeDriver(log, 'a');
    const queue = new KeyedSerialQueue();
    const sut = new TerminalHandle(row, 'agent', noLink, driver, queue);
    const a = sut.run(() => driver.execute({ operationId: 'a', type: 'purchase' }, hooks));
    await running;
    const retired = sut.retire();
    await sut.close();
    expect(log).toEqual(['start a', 'close']);
    await expect(sut.run(async () => 'late')).rejects.toThrow('terminal handle closed');
    release();
    await Promise.all([a, retired]);
    expect(log).toEqual(['start a', 'close', 'end a']);
  });
});

describe(linkForConnection.name, () => {
  it('maps the gateway connection kinds to tunnel link descriptors', () => {
    expect(linkForConnection({ kind: 'tcp', host: '10.0.0.5', port: 2000 })).toEqual({ kind: 'tcp-connect', host: '10.0.0.5', port: 2000 });
    expect(linkForConnection({ kind: 'tcp-listen', port: 2001 })).toEqual({ kind: 'tcp-listen', port: 2001 });
    expect(linkForConnection({ kind: 'serial', path: '/dev/ttyUSB0', baudRate: 9600, dataBits: 8, parity: 'none', stopBits: 1 })).toEqual({
      kind: 'serial',
      path: '/dev/ttyUSB0',
      baudRate: 9600,
      dataBits: 8,
      parity: 'none',
      stopBits: 1,
    });
    expect(() => linkForConnection({ kind: 'tcp', host: 'bad host', port: 1 })).toThrow();
  });
});
