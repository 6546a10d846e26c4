import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';

import { frame, fromHex, hex, data } from '../testing/frame-builder';
import { JOINPROTO_VECTORS } from '../testing/vectors';
import { type RelayPort, TcpRelayPort } from './relay';
import { TillSession, type TillSessionEvent } from './till-session';
import type { ByteTransport } from './transport';

/** In-memory transport: records what the till writes, lets the test play the terminal. */
function fakeTransport() {
  const written: Uint8Array[] = [];
  let onData: (chunk: Uint8Array) => void = () => undefined;
  let onClose: () => void = () => undefined;
  const transport: ByteTransport = {
    write: (bytes) => written.push(bytes),
    onData: (listener) => (onData = listener),
    onClose: (listener) => (onClose = listener),
    close: () => onClose(),
  };
  return { transport, written, terminalSends: (bytes: Uint8Array) => onData(bytes), hangUp: () => onClose() };
}

const vector = (section: string) => {
  const found = JOINPROTO_VECTORS.find((v) => v.section.startsWith(section));
  if (found === undefined) throw new Error(section);
  return found;
};
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe(TillSession.name, () => {
  it('[JP-4.1] answers an echo with an identical frame (spec vector 4.1)', async () => {
    const { transport, written, terminalSends } = fakeTransport();
    new TillSession({ transport });
    terminalSends(fromHex(vector('4.1').frame_hex));
    await flush();
    expect(written.map(hex)).toEqual([vector('4.1').frame_hex]);
  });

  it('[JP-3] answers an unknown command with XX UNKNOWN COMMAND echoing DF00/DF01 (spec vector 3)', async () => {
    const { transport, written, terminalSends } = fakeTransport();
    new TillSession({ transport });
    terminalSends(
      frame(
        data([
          ['DF00', '73'],
          ['DF01', '019903'],
        ]),
      ),
    );
    expect(written.map(hex)).toEqual([JOINPROTO_VECTORS[1].frame_hex]);
  });

  it('[JP-3] answers a malformed frame with XX other err (spec vector 3)', () => {
    const { transport, written, terminalSends } = fakeTransport();
    const events: TillSessionEvent[] = [];
    new TillSession({ transport, onEvent: (e) => events.push(e) });
    terminalSends(
      frame(
        data([
          ['DF00', '99'],
          ['DF01', '931154'],
        ]),
        0x00,
      ),
    );
    expect(written.map(hex)).toEqual([JOINPROTO_VECTORS[0].frame_hex]);
    expect(events).toContainEqual({ type: 'bad-frame', code: 'BAD_LRC', command: undefined, id: undefined });
  });

  it('answers a partial frame left idle with XX other err', () => {
    jest.useFakeTimers();
    try {
      const { transport, written, terminalSends } = fakeTransport();
      new TillSession({ transport, idleFlushMs: 10 });
      terminalSends(fromHex(vector('4.1').frame_hex).subarray(0, 8));
      jest.advanceTimersByTime(9);
      expect(written).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(written.map(hex)).toEqual([JOINPROTO_VECTORS[0].frame_hex]);
    } finally {
      jest.useRealTimers();
    }
  });

  it('sends the spec bytes for a purchase and completes on the matching DF01 only', async () => {
    const { transport, written, terminalSends } = fakeTransport();
    const ids = { next: () => '464448' };
    const till = new TillSession({ transport, ids });
    const outcome = till.execute({ type: 'PurchaseRequest', amount: 1, cashback: 1, department: '01' });
    await flush();
    expect(written.map(hex)).toEqual([vector('5.1 ').frame_hex]);
    terminalSends(
      frame(
        data([
          ['DF00', '01'],
          ['DF01', '111111'],
          ['DF16', '000'],
        ]),
      ),
    );
    terminalSends(fromHex(vector('5.1.3').frame_hex));
    expect(await outcome).toMatchObject({
      outcome: 'completed',
      id: '464448',
      result: { category: 'declined', responseCode: '904', responseMeaning: 'Message not within Standard', maskedPan: '521324******4018' },
    });
  });

  it('tells its id source which id the command goes out with, not an id it refused (invalid, or still in doubt)', async () => {
    const { transport, written, terminalSends } = fakeTransport();
    const offered = ['464448', '464448', 'bad', '019903'];
    const accepted: string[] = [];
    const till = new TillSession({ transport, ids: { next: () => offered.shift()!, accepted: (id) => void accepted.push(id) } });
    // The first command's answer does not decode: 464448 stays in doubt.
    const first = till.execute({ type: 'PurchaseRequest', amount: 1 });
    await flush();
    terminalSends(
      frame(
        data([
          ['DF00', '01'],
          ['DF01', '464448'],
          ['DF05', '12'],
          ['DF16', '000'],
        ]),
      ),
    );
    expect(await first).toMatchObject({ outcome: 'unknown' });
    // The second is offered 464448 (in doubt) and 'bad' (not six characters) before 019903.
    void till.execute({ type: 'BalanceRequest' });
    await flush();
    expect(accepted).toEqual(['464448', '019903']);
    expect(written).toHaveLength(2);
    expect(hex(written[1]!)).toContain(hex(new TextEncoder().encode('019903')));
  });

  it('makes the outcome unknown when the answer with our DF01 does not decode', async () => {
    const { transport, written, terminalSends } = fakeTransport();
    const till = new TillSession({ transport, ids: { next: () => '464448' } });
    const outcome = till.execute({ type: 'PurchaseRequest', amount: 1 });
    await flush();
    terminalSends(
      frame(
        data([
          ['DF00', '01'],
          ['DF01', '464448'],
          ['DF05', '12'],
          ['DF16', '000'],
        ]),
      ),
    );
    expect(await outcome).toMatchObject({ outcome: 'unknown', reason: 'invalid-response' });
    expect(written).toHaveLength(1);
    expect(till.idsInDoubt).toEqual(['464448']);
  });

  it('makes the outcome unknown when the terminal cannot read our frame (XX other err)', async () => {
    const { transport, terminalSends } = fakeTransport();
    const till = new TillSession({ transport });
    const outcome = till.execute({ type: 'BalanceRequest' });
    await flush();
    terminalSends(fromHex(JOINPROTO_VECTORS[0].frame_hex));
    expect(await outcome).toMatchObject({ outcome: 'unknown', reason: 'terminal-rejected-frame' });
  });

  it('completes with category error when the terminal does not know the command', async () => {
    const { transport, terminalSends } = fakeTransport();
    const till = new TillSession({ transport, ids: { next: () => '019903' } });
    const outcome = till.execute({ type: 'LoadKeysRequest' });
    await flush();
    terminalSends(
      frame(
        data([
          ['DF00', '14'],
          ['DF01', '019903'],
          ['DF16', 'XX'],
          ['DF1A', 'UNKNOWN COMMAND'],
        ]),
      ),
    );
    expect(await outcome).toMatchObject({ outcome: 'completed', result: { category: 'error', message: 'UNKNOWN COMMAND' } });
  });

  it('rejects invalid input before sending anything', async () => {
    const { transport, written } = fakeTransport();
    const till = new TillSession({ transport });
    await expect(till.execute({ type: 'PurchaseRequest', amount: 10.5 })).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
    expect(written).toHaveLength(0);
    expect(till.idsInDoubt).toEqual([]);
  });

  it('answers a card check from the till lists: white by default', async () => {
    const { transport, written, terminalSends } = fakeTransport();
    new TillSession({ transport });
    terminalSends(fromHex(vector('5.2 ').frame_hex));
    await flush();
    expect(written.map(hex)).toEqual([vector('5.2.3').frame_hex]);
  });

  it('answers 93s a terminal sends without waiting XX at once while one waits on the connection, and holds only that one', async () => {
    const server = createServer((socket) => socket.resume());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const relay = new TcpRelayPort({ allow: [address], receiveTimeoutMs: 60_000 });
    try {
      const { transport, written, terminalSends } = fakeTransport();
      new TillSession({ transport, relay });
      terminalSends(
        frame(
          data([
            ['DF00', '91'],
            ['DF01', '000001'],
            ['DF21', 'tcp'],
            ['DF22', address],
          ]),
        ),
      );
      while (relay.openConnections === 0) await flush();
      await flush();
      const opened = frame(
        data([
          ['DF00', '91'],
          ['DF01', '000001'],
          ['DF23', '1'],
        ]),
      );
      expect(written.map(hex)).toEqual([hex(opened)]);
      const ids = Array.from({ length: 500 }, (_, i) => String(100_000 + i));
      terminalSends(
        Buffer.concat(
          ids.map((id) =>
            frame(
              data([
                ['DF00', '93'],
                ['DF01', id],
                ['DF23', '1'],
                ['DF25', '4096'],
              ]),
            ),
          ),
        ),
      );
      await flush();
      // The first waits for the host's bytes; every other one is answered at once and holds nothing.
      const busy = ids.slice(1).map((id) =>
        hex(
          frame(
            data([
              ['DF00', '93'],
              ['DF01', id],
              ['DF16', 'XX'],
              ['DF1A', 'Operation already in progress'],
            ]),
          ),
        ),
      );
      expect(written.slice(1).map(hex)).toEqual(busy);
    } finally {
      await relay.closeAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('closes a relay connection that finished opening after the session closed: no 94 will come for it', async () => {
    const { transport, written, terminalSends, hangUp } = fakeTransport();
    let finishOpen: (connectionId: string) => void = () => undefined;
    const closed: string[] = [];
    const relay: RelayPort = {
      open: () => new Promise((resolve) => (finishOpen = resolve)),
      send: () => Promise.reject(new Error('unexpected')),
      receive: () => Promise.reject(new Error('unexpected')),
      close: async (connectionId) => {
        closed.push(connectionId);
      },
    };
    new TillSession({ transport, relay });
    terminalSends(
      frame(
        data([
          ['DF00', '91'],
          ['DF01', '000001'],
          ['DF21', 'tcp'],
          ['DF22', 'processing.test:4000'],
        ]),
      ),
    );
    await flush();
    hangUp();
    finishOpen('7');
    await flush();
    // Before, the id was kept for a session that was gone: the connection held one of the terminal's relay places
    // until its tunnel closed.
    expect(closed).toEqual(['7']);
    expect(written).toEqual([]);
  });
});

describe(`${TillSession.name}: a 95 left unanswered`, () => {
  it('ends the session: a late "not found" (no DF01, spec 4.9.1) is never taken for the next 95\'s answer', async () => {
    const { transport, written, terminalSends } = fakeTransport();
    const session = new TillSession({ transport, timeoutsMs: { Repeat: 20 } });
    expect(await session.recover('100001')).toMatchObject({ outcome: 'unknown', reason: 'timeout' });
    // Before, the session stayed open and the next 95 went out on this link, where the first one's late "not found"
    // was taken for its answer (that command reported not performed, whatever the terminal had done).
    expect(session.isClosed).toBe(true);
    await expect(session.recover('100002')).rejects.toMatchObject({ code: 'SESSION_CLOSED' });
    terminalSends(fromHex(vector('4.9.1').frame_hex));
    expect(written).toHaveLength(1);
  });

  it('a 95 answered in time leaves the session open', async () => {
    const { transport, written, terminalSends } = fakeTransport();
    const session = new TillSession({ transport, timeoutsMs: { Repeat: 1_000 } });
    const recovered = session.recover('100001');
    await flush();
    expect(written).toHaveLength(1);
    terminalSends(fromHex(vector('4.9.1').frame_hex));
    expect(await recovered).toMatchObject({ outcome: 'not-found' });
    expect(session.isClosed).toBe(false);
  });
});
