import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

import { cardListPolicy, duplexTransport, TcpRelayPort, TillSession, type TillSessionEvent, type TillSessionOptions } from '@payorch/joinproto';

import { trackTimers } from '../pending-timers';
import { waitFor } from '../wait';
import { ProcessingHostSimulator } from './processing-host';
import { JoinprotoTerminalSimulator, type TerminalSimulatorOptions } from './terminal';

interface Rig {
  sim: JoinprotoTerminalSimulator;
  till: TillSession;
  close(): Promise<void>;
}

const rigs: Rig[] = [];
const hosts: ProcessingHostSimulator[] = [];

async function rig(simOptions: TerminalSimulatorOptions = {}, tillOptions: Partial<TillSessionOptions> = {}): Promise<Rig> {
  const sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30, ...simOptions });
  const { port } = await sim.listen(0);
  const socket = connect(port, '127.0.0.1');
  const till = new TillSession({ transport: duplexTransport(socket), ...tillOptions });
  await sim.ready();
  const result: Rig = {
    sim,
    till,
    close: async () => {
      till.close();
      await sim.close();
    },
  };
  rigs.push(result);
  return result;
}

async function host(answerPaddingBytes = 0): Promise<string> {
  const sim = new ProcessingHostSimulator({ answerPaddingBytes });
  hosts.push(sim);
  const { port } = await sim.listen(0);
  return `127.0.0.1:${port}`;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

afterEach(async () => {
  await Promise.all(rigs.splice(0).map((r) => r.close()));
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

describe('TillSession against the terminal simulator', () => {
  describe.each(['online', 'offline'] as const)('%s terminal', (mode) => {
    async function modeRig(simOptions: TerminalSimulatorOptions = {}, tillOptions: Partial<TillSessionOptions> = {}) {
      if (mode === 'online') return rig(simOptions, tillOptions);
      const address = await host();
      return rig({ mode, processingHost: address, ...simOptions }, { relay: new TcpRelayPort({ allow: [address] }), ...tillOptions });
    }

    it('approves a purchase with a masked PAN, RRN, auth code and receipt', async () => {
      const { till, sim } = await modeRig();
      const outcome = await till.execute({ type: 'PurchaseRequest', amount: 1500 });
      expect(outcome).toMatchObject({ outcome: 'completed', command: 'Purchase', response: { type: 'PurchaseResponse' } });
      if (outcome.outcome !== 'completed') throw new Error('unreachable');
      expect(outcome.result).toMatchObject({
        category: 'approved',
        responseCode: '000',
        maskedPan: '544966******2078',
        amount: 1500,
        merchantId: '111122223333444',
      });
      expect(outcome.result.rrn).toMatch(/^\d{12}$/);
      expect(outcome.result.authCode).toMatch(/^\d{6}$/);
      expect(outcome.result.receiptText).toBe('ЧЕК purchase 1500');
      expect(JSON.stringify(outcome)).not.toContain('5449661234562078');
      expect(sim.sentRequests.OpenConnectionRequest ?? 0).toBe(mode === 'offline' ? 1 : 0);
    });

    it.each([
      [1516, 'declined', '116'],
      [1504, 'declined', '904'],
      [1551, 'declined', '100'],
      [1577, 'canceled', 'XX'],
      [1588, 'error', 'XX'],
    ])('amount %i ends %s with DF16 %s', async (amount, category, code) => {
      const { till } = await modeRig();
      const outcome = await till.execute({ type: 'PurchaseRequest', amount });
      expect(outcome).toMatchObject({ outcome: 'completed', result: { category, responseCode: code } });
    });

    it('runs every other bank command: preauth, completion, cancel, refund, cash, balance, PIN, keys, close day', async () => {
      const { till } = await modeRig();
      const hold = await till.execute({ type: 'PreauthRequest', amount: 5000 });
      const rrn = hold.outcome === 'completed' ? (hold.response.type === 'PreauthResponse' ? (hold.response.rrn ?? '') : '') : '';
      expect(rrn).toMatch(/^\d{12}$/);
      const results = [
        await till.execute({ type: 'CompletionRequest', amount: 4000, rrn }),
        await till.execute({ type: 'RefundRequest', amount: 700 }),
        await till.execute({ type: 'CashAdvanceRequest', amount: 2000 }),
        await till.execute({ type: 'CashDepositRequest', amount: 300 }),
        await till.execute({ type: 'BalanceRequest' }),
        await till.execute({ type: 'PinChangeRequest' }),
        await till.execute({ type: 'LoadKeysRequest', department: '01' }),
      ];
      expect(results.map((r) => r.outcome === 'completed' && [r.command, r.result.category])).toEqual([
        ['Completion', 'approved'],
        ['Refund', 'approved'],
        ['CashAdvance', 'approved'],
        ['CashDeposit', 'approved'],
        ['Balance', 'approved'],
        ['PinChange', 'approved'],
        ['LoadKeys', 'approved'],
      ]);
      expect(results[4]).toMatchObject({ result: { amount: 100_000 } });

      const secondHold = await till.execute({ type: 'PreauthRequest', amount: 900 });
      const secondRrn = secondHold.outcome === 'completed' && secondHold.response.type === 'PreauthResponse' ? (secondHold.response.rrn ?? '') : '';
      expect(await till.execute({ type: 'CancelRequest', rrn: secondRrn })).toMatchObject({ result: { category: 'approved' } });
      expect(await till.execute({ type: 'CancelRequest', rrn: '999999999999' })).toMatchObject({ result: { category: 'declined', responseCode: '914' } });

      const close = await till.execute({ type: 'CloseDayRequest' });
      expect(close).toMatchObject({ outcome: 'completed', result: { category: 'approved', responseCode: '000' } });
      expect(close.outcome === 'completed' && close.result.receiptText).toBe('CLOSE DAY\nDEBIT 2 6000\nCREDIT 2 1000\nTOTAL 5000');
    });
  });

  it('reports totals that disagree with the host as 915 on close day', async () => {
    const { till } = await rig({ closeDayMismatch: true });
    await till.execute({ type: 'PurchaseRequest', amount: 100 });
    const close = await till.execute({ type: 'CloseDayRequest', department: '01' });
    expect(close).toMatchObject({ result: { category: 'declined', responseCode: '915', receiptText: 'CLOSE DAY\nDEBIT 1 100\nCREDIT 0 0\nTOTAL 100' } });
  });

  it.each([
    ['ok', '000', 'approved'],
    ['not ok', '001', 'error'],
    ['bad format', 'XX', 'error'],
  ] as const)('runs load-config and update-app with result %s', async (serviceResult, code, category) => {
    const { till } = await rig({ serviceResult });
    for (const type of ['LoadConfigRequest', 'UpdateAppRequest'] as const) {
      expect(await till.execute({ type })).toMatchObject({ outcome: 'completed', result: { responseCode: code, category } });
    }
  });

  it('uploads logs delivered in many DF24 chunks', async () => {
    const { till } = await rig();
    const outcome = await till.execute({ type: 'UploadLogsRequest' });
    expect(outcome.outcome === 'completed' && Buffer.from(outcome.result.data ?? []).toString()).toBe('joinproto terminal simulator log\n'.repeat(8));
  });

  it('interrupts a command waiting for a card: the interrupt is acknowledged, the command ends CANCELED', async () => {
    const { till, sim } = await rig();
    const purchase = till.execute({ type: 'PurchaseRequest', amount: 2055 });
    await waitFor(() => sim.commandInFlight !== undefined, { what: 'the purchase waiting for a card' });
    const interrupt = await till.interrupt();
    expect(interrupt).toMatchObject({ outcome: 'completed', command: 'Interrupt', result: { category: 'approved' } });
    expect(await purchase).toMatchObject({ outcome: 'completed', result: { category: 'canceled', message: 'CANCELED' } });
  });

  it('gets "Nothing to interrupt" when idle', async () => {
    const { till } = await rig();
    expect(await till.interrupt()).toMatchObject({ result: { category: 'error', responseCode: 'XX', message: 'Nothing to interrupt' } });
  });

  it('recovers with 95 the result of a command whose response was dropped (outcome unknown, never failed)', async () => {
    const { till } = await rig({ dropResponse: (request) => request.type === 'PurchaseRequest' }, { timeoutsMs: { Purchase: 150 } });
    const lost = await till.execute({ type: 'PurchaseRequest', amount: 4200 });
    expect(lost).toMatchObject({ outcome: 'unknown', reason: 'timeout', command: 'Purchase' });
    expect(till.idsInDoubt).toEqual([lost.id]);
    const recovered = await till.recover(lost.id);
    expect(recovered).toMatchObject({ outcome: 'completed', command: 'Purchase', id: lost.id, result: { category: 'approved', amount: 4200 } });
    expect(till.idsInDoubt).toEqual([]);
  });

  it('keeps an answer that arrives after the timeout and returns it on recovery', async () => {
    const events: TillSessionEvent[] = [];
    const { till } = await rig({}, { timeoutsMs: { Purchase: 60 }, onEvent: (e) => events.push(e) });
    const lost = await till.execute({ type: 'PurchaseRequest', amount: 3055 });
    expect(lost.outcome).toBe('unknown');
    await till.interrupt();
    await waitFor(() => events.some((e) => e.type === 'late-response' && e.id === lost.id), { what: 'the late answer to the purchase' });
    expect(await till.recover(lost.id)).toMatchObject({ outcome: 'completed', command: 'Purchase', result: { category: 'canceled' } });
  });

  it('reports not-found when the terminal has no answer for the id', async () => {
    const { till } = await rig();
    expect(await till.recover('123456')).toMatchObject({ outcome: 'not-found', response: { responseCode: 'XX', message: 'FAILED' } });
  });

  it('turns a transport loss during a command into outcome unknown, then refuses to send', async () => {
    const { till, sim } = await rig();
    const purchase = till.execute({ type: 'PurchaseRequest', amount: 6155 });
    await waitFor(() => sim.commandInFlight !== undefined, { what: 'the purchase running on the terminal' });
    sim.disconnect();
    expect(await purchase).toMatchObject({ outcome: 'unknown', reason: 'transport-closed' });
    await expect(till.execute({ type: 'BalanceRequest' })).rejects.toMatchObject({ code: 'SESSION_CLOSED' });
  });

  it('does not reuse a DF01 id while its answer may still come', async () => {
    let counter = 0;
    const ids = { next: () => String(++counter > 2 ? 1 : counter).padStart(6, '0') };
    const { till } = await rig({ dropResponse: (r) => r.type === 'BalanceRequest' }, { ids, timeoutsMs: { Balance: 50 } });
    const lost = await till.execute({ type: 'BalanceRequest' });
    expect(lost).toMatchObject({ outcome: 'unknown', id: '000001' });
    const next = await till.execute({ type: 'PinChangeRequest' });
    expect(next.id).toBe('000002');
    await expect(till.execute({ type: 'PinChangeRequest' })).rejects.toMatchObject({ code: 'ID_CONFLICT' });
  });

  describe('card check before purchase', () => {
    it('approves a white-listed card (default policy)', async () => {
      const { till, sim } = await rig({ cardCheckBeforePurchase: true });
      expect(await till.execute({ type: 'PurchaseRequest', amount: 100 })).toMatchObject({ result: { category: 'approved' } });
      expect(sim.sentRequests.CardCheckRequest).toBe(1);
    });

    it('declines a black-listed card', async () => {
      const { till } = await rig({ cardCheckBeforePurchase: true }, { cardCheck: cardListPolicy({ black: ['544966******2078'] }) });
      expect(await till.execute({ type: 'PurchaseRequest', amount: 100 })).toMatchObject({ result: { category: 'declined', responseCode: '120' } });
    });
  });

  describe('relay (offline terminal)', () => {
    it('relays a host answer that arrives in many 93 chunks', async () => {
      const address = await host(5000);
      const relay = new TcpRelayPort({ allow: [address] });
      const { till, sim } = await rig({ mode: 'offline', processingHost: address, receiveChunkBytes: 128 }, { relay });
      expect(await till.execute({ type: 'PurchaseRequest', amount: 700 })).toMatchObject({ result: { category: 'approved' } });
      expect(sim.sentRequests.ReceiveDataRequest).toBeGreaterThanOrEqual(40);
      expect(sim.sentRequests.CloseConnectionRequest).toBe(1);
      expect(relay.openConnections).toBe(0);
    });

    it('denies a host outside the allowlist: the terminal gets XX with a clear DF1A and answers FAILED', async () => {
      const address = await host();
      const { till, sim } = await rig({ mode: 'offline', processingHost: address }, { relay: new TcpRelayPort({ allow: ['127.0.0.1:1'] }) });
      expect(await till.execute({ type: 'PurchaseRequest', amount: 700 })).toMatchObject({ result: { category: 'error', message: 'FAILED' } });
      expect(sim.tillErrors).toEqual(['Address not allowed by till']);
    });

    it('reports an unreachable host to the terminal', async () => {
      const address = `127.0.0.1:${await closedPort()}`;
      const { till, sim } = await rig({ mode: 'offline', processingHost: address }, { relay: new TcpRelayPort({ allow: [address] }) });
      expect(await till.execute({ type: 'RefundRequest', amount: 700 })).toMatchObject({ result: { category: 'error', message: 'FAILED' } });
      expect(sim.tillErrors).toEqual(['Connection refused']);
    });

    it('closed during a relay exchange, leaves no timer behind (the exchange unwinding sends nothing more)', async () => {
      // A processing host that accepts the relay's connection and never answers: the terminal waits on its 93.
      const sockets: Socket[] = [];
      const silent = createServer((socket) => sockets.push(socket.on('error', () => undefined)));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const address = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const timers = trackTimers();
      try {
        const r = await rig({ mode: 'offline', processingHost: address }, { relay: new TcpRelayPort({ allow: [address] }) });
        const purchase = r.till.execute({ type: 'PurchaseRequest', amount: 700 });
        await waitFor(() => r.sim.sentRequests.ReceiveDataRequest === 1 && sockets.length === 1, {
          what: 'the terminal waiting for the host through the relay',
        });

        await r.close();
        expect(await purchase).toMatchObject({ outcome: 'unknown', reason: 'transport-closed' });
        expect(timers.pending()).toEqual([]);
        expect(r.sim.sentRequests.CloseConnectionRequest).toBeUndefined();
      } finally {
        timers.stop();
        sockets.forEach((socket) => socket.destroy());
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      }
    });

    it('refuses relay when the session has no relay port', async () => {
      const address = await host();
      const { till, sim } = await rig({ mode: 'offline', processingHost: address });
      expect(await till.execute({ type: 'PurchaseRequest', amount: 700 })).toMatchObject({ result: { message: 'FAILED' } });
      expect(sim.tillErrors).toEqual(['Relay not available']);
    });
  });
});
