/**
 * @payorch/jpay client against the simulator over real TCP on 127.0.0.1: every command and message of
 * both documents, encrypted and not.
 */
import { JpayClient, recoverTransaction, tcpConnector, type Dialect, type JpayEvent, type TransactionResult } from '@payorch/jpay';

import { JpaySimulator } from './simulator';
import { SIM_CARD } from './scenarios';

const PASSWORD = '12345678';

interface Harness {
  readonly sim: JpaySimulator;
  readonly client: JpayClient;
  readonly events: JpayEvent[];
}

async function harness(dialect: Dialect, idleTimeoutMs = 2_000): Promise<Harness> {
  const sim = new JpaySimulator({
    dialect,
    keepaliveIntervalMs: 2,
    now: () => new Date(Date.UTC(2025, 0, 16, 10, 30, 0)),
  });
  const port = await sim.listen(0);
  const events: JpayEvent[] = [];
  const client = new JpayClient({
    dialect,
    connect: tcpConnector({ host: '127.0.0.1', port }),
    onEvent: (e) => events.push(e),
    idleTimeoutMs,
  });
  return { sim, client, events };
}

const outcomeOf = (result: TransactionResult) => result.outcome;

describe.each(['aqsi', 'jpay'] as const)('JpaySimulator (%s dialect)', (dialect) => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness(dialect);
  });
  afterEach(() => h.sim.close());

  describe.each([false, true])('secure=%s', (secure) => {
    it('runs the admin token lifecycle and every token command', async () => {
      const login = await h.client.login(PASSWORD, { secure });
      expect(login).toMatchObject({ status: 'ok', token: expect.stringMatching(/^[0-9A-F]{32}$/) });
      expect(h.client.isSecure).toBe(secure);
      expect((await h.client.updateConfiguration()).status).toBe('ok');
      expect((await h.client.testConnection()).status).toBe('ok');
      expect(await h.client.loadWorkKeys()).toMatchObject({
        macChangeReceipt: { rrn: '123456789123' },
      });
      const masterKeys = await h.client.loadMasterKeys();
      expect(masterKeys.receipt?.keys).toHaveLength(dialect === 'aqsi' ? 1 : 0);
      expect(await h.client.getParameters()).toMatchObject({
        parameters: { tid: '1000000001', devid: 'SIM-0000000001' },
      });
      expect((await h.client.changePassword(PASSWORD, '87654321')).status).toBe('ok');
      const adminResponses = h.events.filter((e) => e.type === 'response' && e.command !== 'login');
      expect(adminResponses.map((e) => e.type === 'response' && e.encrypted)).toEqual(Array(adminResponses.length).fill(secure));
      expect((await h.client.logout()).status).toBe('ok');
      expect(h.client.isLoggedIn).toBe(false);
      expect((await h.client.login(PASSWORD)).status).toBe('notauthorized');
      expect((await h.client.resetPassword()).status).toBe('ok');
      expect((await h.client.login(PASSWORD)).status).toBe('ok');
    });

    it('approves a purchase with display messages as live events, and voids it by number', async () => {
      if (secure) await h.client.login(PASSWORD, { secure });
      const purchase = await h.client.transaction({
        type: 'purchase',
        amount: 12300,
        currency: '643',
      });
      expect(purchase).toMatchObject({
        outcome: 'approved',
        receipt: { amountAuthorized: 12300, seq: '000001', applicationName: 'VISA ДЕБЕТ' },
      });
      const displays = h.events.flatMap((e) => (e.type === 'message' && e.message.type === 'display' ? [e.message.code] : []));
      expect(displays).toEqual(['D1', 'D4', '03']);
      expect(h.events.filter((e) => e.type === 'message').every((e) => e.type === 'message' && e.encrypted === secure)).toBe(true);
      const voided = await h.client.transaction({ type: 'void', number: '000001' });
      expect(voided).toMatchObject({
        outcome: 'approved',
        receipt: { type: 'purchasereversal', amountAuthorized: 12300 },
      });
      const again = await h.client.transaction({ type: 'void', number: '1' });
      expect(again).toMatchObject({ outcome: 'error', status: 'alreadyreversed' });
    });
  });

  it('executes partial voids (§8.9, both dialects) up to what is left of the original, then refuses more', async () => {
    const purchase = await h.client.transaction({ type: 'purchase', amount: 10000 });
    const seq = purchase.outcome === 'approved' ? purchase.receipt.seq : undefined;
    expect(seq).toBe('000001');
    expect(await h.client.transaction({ type: 'void', number: seq, amount: 3000 })).toMatchObject({
      outcome: 'approved',
      receipt: { type: 'purchasereversal', amountAuthorized: 3000 },
    });
    // 7000 are left: 7001 is refused and nothing is logged.
    expect(await h.client.transaction({ type: 'void', number: seq, amount: 7001 })).toMatchObject({ outcome: 'error', status: 'invalidarguments' });
    expect(await h.client.transaction({ type: 'void', number: seq, amount: 2000 })).toMatchObject({
      outcome: 'approved',
      receipt: { amountAuthorized: 2000 },
    });
    // A void without amount cancels the rest (5000), after which the original is fully reversed.
    expect(await h.client.transaction({ type: 'void', number: seq })).toMatchObject({ outcome: 'approved', receipt: { amountAuthorized: 5000 } });
    expect(await h.client.transaction({ type: 'void', number: seq, amount: 1 })).toMatchObject({ outcome: 'error', status: 'alreadyreversed' });
    expect(h.sim.ledger.log.map((e) => [e.type, e.amount])).toEqual([
      ['purchase', 10000],
      ['purchasereversal', 3000],
      ['purchasereversal', 2000],
      ['purchasereversal', 5000],
    ]);
  });

  it('runs refund, cashback, partial void of the last transaction, forced refund and manual entry', async () => {
    expect(outcomeOf(await h.client.transaction({ type: 'refund', amount: 5000, rrn: '120157645346' }))).toBe('approved');
    expect(
      await h.client.transaction({
        type: 'purchase-with-cashback',
        amount: 10000,
        amountOther: 2000,
      }),
    ).toMatchObject({
      outcome: 'approved',
      receipt: { amountAuthorized: 10000, amountOther: 2000 },
    });
    expect(await h.client.transaction({ type: 'void', number: 'last', amount: 4000 })).toMatchObject({
      outcome: 'approved',
      receipt: { type: 'purchasereversal', amountAuthorized: 4000 },
    });
    expect(
      outcomeOf(
        await h.client.transaction({
          type: 'refund',
          amount: 300,
          rrn: '120157645346',
          forced: true,
        }),
      ),
    ).toBe('approved');
    const manual = {
      pan: '4000000010000001',
      expiry: '2812',
      password: PASSWORD,
      cardholder: 'JOHN SMITH',
    };
    expect(outcomeOf(await h.client.transaction({ type: 'purchase', amount: 700, manualEntry: manual }))).toBe('approved');
    expect(
      await h.client.transaction({
        type: 'purchase',
        amount: 700,
        manualEntry: { ...manual, password: '00000000' },
      }),
    ).toMatchObject({
      outcome: 'error',
      status: 'notauthorized',
    });
    expect(JSON.stringify(h.events)).not.toContain('4000000010000001');
  });

  it('reports totals with the D/C sign, then settles and empties the log', async () => {
    await h.client.transaction({ type: 'purchase', amount: 1000 });
    await h.client.transaction({ type: 'refund', amount: 5000 });
    await h.client.transaction({ type: 'purchase', amount: 1051 }); // declined: not in totals
    const report = await h.client.report(PASSWORD, 'full');
    expect(report.xreport?.transactions.map((t) => [t.type, t.status])).toEqual([
      ['purchase', 'approved'],
      ['refund', 'approved'],
      ['purchase', 'declined'],
    ]);
    expect(report.xreport?.grandTotals).toMatchObject({
      purchase: { count: 1, sum: 1000 },
      refund: { count: 1, sum: 5000 },
      totalSum: -4000,
    });
    expect((await h.client.report(PASSWORD, 'brief')).xreport?.transactions).toEqual([]);
    const settlement = await h.client.settlement(PASSWORD);
    expect(settlement).toMatchObject({
      status: 'ok',
      sreport: { amount: -4000, tnum: 3, settlementResult: 'passed' },
    });
    expect(settlement.bankName).toBe(dialect === 'aqsi' ? 'BANK' : undefined);
    expect((await h.client.report(PASSWORD, 'full')).xreport?.transactions).toEqual([]);
    expect((await h.client.report('00000000', 'full')).status).toBe('notauthorized');
  });

  it('handles settlement force per dialect, and clear', async () => {
    if (dialect === 'aqsi') expect((await h.client.settlement(PASSWORD, { force: true })).status).toBe('ok');
    else
      await expect(h.client.settlement(PASSWORD, { force: true })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    await h.client.transaction({ type: 'purchase', amount: 200 });
    expect(await h.client.clear(PASSWORD)).toMatchObject({
      status: 'ok',
      sreport: { amount: 200 },
    });
    expect((await h.client.transaction({ type: 'void', number: 'last' })).outcome).toBe('error');
  });

  it('runs an SBP payment (QR show/hide) and an SBP refund', async () => {
    const payment = await h.client.transaction({ type: 'purchase', amount: 12300, forceSbp: true });
    expect(payment).toMatchObject({
      outcome: 'approved',
      receipt: {
        iface: 'sbp',
        status: 'approved',
        tidSbp: '123456789A2',
        bankName: 'БАНК',
        seq: '000001',
      },
    });
    const qr = h.events.flatMap((e) => (e.type === 'message' && e.message.type === 'displayqrcode' ? [e.message.status] : []));
    expect(qr).toEqual(['show', 'hide']);
    const refund = await h.client.transaction({
      type: 'refund',
      amount: 12300,
      rrn: payment.outcome === 'approved' ? payment.receipt.rrn : undefined,
      forceSbp: true,
    });
    expect(refund).toMatchObject({
      outcome: 'approved',
      receipt: { iface: 'sbp', type: 'refund', seq: '000002' },
    });
    expect((await h.client.transaction({ type: 'purchase', amount: 151, forceSbp: true })).outcome).toBe('declined');
    expect(await h.client.transaction({ type: 'purchase', amount: 164 })).toMatchObject({
      outcome: 'approved',
      receipt: { aid: SIM_CARD.aid },
    });
  });

  it('pays a purchase without force-sbp by SBP when the QR is paid first (65): SBP receipt, SBP counter', async () => {
    await h.client.transaction({ type: 'purchase', amount: 100 });
    await h.client.transaction({ type: 'purchase', amount: 200 });
    expect(await h.client.transaction({ type: 'purchase', amount: 165 })).toMatchObject({ outcome: 'approved', receipt: { iface: 'sbp', seq: '000001' } });
    const qr = h.events.flatMap((e) => (e.type === 'message' && e.message.type === 'displayqrcode' ? [e.message.status] : []));
    expect(qr).toEqual(['show', 'hide']);
    // §8.10: a refund without force-sbp runs by card.
    expect(await h.client.transaction({ type: 'refund', amount: 165, rrn: '100000000003' })).toMatchObject({ receipt: { aid: SIM_CARD.aid, seq: '000003' } });
  });

  it('maps terminal statuses to outcomes: declined, error, unknown, canceled', async () => {
    expect(await h.client.transaction({ type: 'purchase', amount: 151 })).toMatchObject({
      outcome: 'declined',
      receipt: { declineReason: 'onlinedeclined' },
    });
    expect(await h.client.transaction({ type: 'purchase', amount: 152 })).toMatchObject({
      outcome: 'error',
      status: 'tryagain',
    });
    // A communication error can follow a host approval whose answer was lost: without a receipt it proves nothing.
    expect(await h.client.transaction({ type: 'purchase', amount: 153 })).toMatchObject({
      outcome: 'unknown',
      reason: 'status-unproven',
      status: 'communicationerror',
      response: { errors: ['Host name is not found.'] },
    });
    expect(await h.client.transaction({ type: 'purchase', amount: 163 })).toMatchObject({
      outcome: 'canceled',
      status: 'pinentrybypassed',
    });
  });

  it('cancels a running transaction by answering keepalive cancelled', async () => {
    const abort = new AbortController();
    const listener = h.events.length;
    const running = h.client.transaction({ type: 'purchase', amount: 154 }, { signal: abort.signal });
    setTimeout(() => abort.abort(), 20);
    expect(await running).toMatchObject({ outcome: 'canceled', status: 'cancelled' });
    expect(h.events.slice(listener).some((e) => e.type === 'cancel-sent')).toBe(true);
  });

  it('answers dex with the pluggable tag provider, and an unknown message notimplemented', async () => {
    const dex = await h.client.transaction(
      { type: 'purchase', amount: 155 },
      {
        handlers: {
          dex: (m) => (m.kernelTags.some((t) => t.name === '9F02') ? [{ name: '9F06', value: 'A0000000031010' }] : []),
        },
      },
    );
    expect(dex).toMatchObject({
      outcome: 'approved',
      receipt: {
        extras: [{ name: 'terminal-tag', attrs: { name: '9F06', value: 'A0000000031010' } }],
      },
    });
    expect(JSON.stringify(h.events)).not.toContain(SIM_CARD.pan);
    expect(outcomeOf(await h.client.transaction({ type: 'purchase', amount: 156 }))).toBe('approved');
    expect(h.events).toContainEqual({
      type: 'unknown-message',
      command: 'transaction',
      root: 'selectaid',
    });
  });

  it('handles card detection messages of the dialect', async () => {
    if (dialect === 'aqsi') {
      expect(outcomeOf(await h.client.transaction({ type: 'purchase', amount: 157 }))).toBe('approved');
      const ended = await h.client.transaction(
        { type: 'purchase', amount: 157 },
        { handlers: { smartcard: () => ({ type: 'smartcard', command: 'end', indicator: 'ok' }) } },
      );
      expect(ended.outcome).toBe('canceled');
    } else {
      const steps: string[] = [];
      const result = await h.client.transaction(
        { type: 'purchase', amount: 157 },
        {
          handlers: {
            card: (m) => {
              steps.push(`${m.code}:${m.status ?? ''}`);
              if (m.code === 'open') return { type: 'card', code: 'write', blockId: 1, payload: 'AQID' };
              if (m.code === 'write') return { type: 'card', code: 'read', blockId: 1 };
              return {
                type: 'card',
                code: 'close',
                receipt: [
                  { name: 'status', attrs: {}, children: [], text: 'approved' },
                  { name: 'balance', attrs: {}, children: [], text: '1000' },
                ],
              };
            },
          },
        },
      );
      expect(steps).toEqual(['open:', 'write:ok', 'read:ok']);
      expect(result).toMatchObject({
        outcome: 'approved',
        receipt: { status: 'approved', extras: [{ name: 'balance', text: '1000' }] },
      });
    }
  });

  it('masks plain-text-pan on an encrypted session', async () => {
    await h.client.login(PASSWORD, { secure: true });
    const result = await h.client.transaction({ type: 'purchase', amount: 162 });
    expect(result).toMatchObject({
      outcome: 'approved',
      receipt: { plainTextPanMasked: '411111******1111' },
    });
    expect(JSON.stringify(result)).not.toContain(SIM_CARD.pan);
  });

  it('reports unknown on a dropped connection and recovers the approval from the full report', async () => {
    await h.client.transaction({ type: 'purchase', amount: 100 });
    const dropped = await h.client.transaction({ type: 'purchase', amount: 1158 });
    expect(dropped).toMatchObject({ outcome: 'unknown', reason: 'transport-closed' });
    const recovered = await recoverTransaction(h.client, PASSWORD, {
      request: { type: 'purchase', amount: 1158 },
      afterSeq: '000001',
    });
    expect(recovered).toMatchObject({
      resolution: 'approved',
      transaction: { seq: '000002', amount: 1158 },
    });
  });

  it('reports unknown on a drop before approval and recovers not-found after the last receipt known, undetermined without it', async () => {
    const known = await h.client.transaction({ type: 'purchase', amount: 100 });
    expect(await h.client.transaction({ type: 'purchase', amount: 1159 })).toMatchObject({
      outcome: 'unknown',
      reason: 'transport-closed',
    });
    const request = { type: 'purchase', amount: 1159 } as const;
    const afterSeq = known.outcome === 'approved' ? known.receipt.seq : undefined;
    expect(await recoverTransaction(h.client, PASSWORD, { request, afterSeq })).toEqual({ resolution: 'not-found' });
    expect(await recoverTransaction(h.client, PASSWORD, { request })).toEqual({ resolution: 'undetermined', why: 'no-anchor' });
  });

  it('reports unknown on a malformed packet and recovers it; identical transactions stay ambiguous', async () => {
    expect(await h.client.transaction({ type: 'purchase', amount: 1161 })).toMatchObject({
      outcome: 'unknown',
      reason: 'protocol-error',
    });
    expect(await recoverTransaction(h.client, PASSWORD, { request: { type: 'purchase', amount: 1161 } })).toMatchObject({ resolution: 'approved' });
    await h.client.transaction({ type: 'purchase', amount: 1100 });
    await h.client.transaction({ type: 'purchase', amount: 1100 });
    const recovered = await recoverTransaction(h.client, PASSWORD, {
      request: { type: 'purchase', amount: 1100 },
    });
    expect(recovered).toMatchObject({
      resolution: 'ambiguous',
      candidates: [{ seq: '000002' }, { seq: '000003' }],
    });
  });

  it('runs runreset with the dialect keepalive spelling, and aborts it on cancel', async () => {
    await h.client.login(PASSWORD);
    expect((await h.client.runReset()).status).toBe('ok');
    const keepalives = h.events.flatMap((e) => (e.type === 'message' && e.message.type === 'keepalive' ? [e.message] : []));
    expect(keepalives).toEqual([
      {
        type: 'keepalive',
        root: dialect === 'jpay' ? 'keep-alive' : 'keepalive',
        resetConnected: false,
      },
      {
        type: 'keepalive',
        root: dialect === 'jpay' ? 'keep-alive' : 'keepalive',
        resetConnected: false,
      },
      {
        type: 'keepalive',
        root: dialect === 'jpay' ? 'keep-alive' : 'keepalive',
        resetConnected: true,
      },
    ]);
    const abort = new AbortController();
    abort.abort();
    expect((await h.client.runReset({ signal: abort.signal })).status).toBe('cancelled');
  });

  it('sets a host key over a secure session only', async () => {
    await h.client.login(PASSWORD);
    await expect(h.client.setHostKey('hkey1', 'QUJDRA==')).rejects.toMatchObject({
      code: 'NOT_ENCRYPTED_SESSION',
    });
    await h.client.login(PASSWORD, { secure: true });
    expect((await h.client.setHostKey('hkey1', 'QUJDRA==')).status).toBe('ok');
    expect(h.sim.hostKeyNames).toEqual(['hkey1']);
  });

  it('rejects a second concurrent command with BUSY and token commands without login', async () => {
    const first = h.client.transaction({ type: 'purchase', amount: 100 });
    await expect(h.client.transaction({ type: 'purchase', amount: 100 })).rejects.toMatchObject({
      code: 'BUSY',
    });
    await first;
    await expect(h.client.getParameters()).rejects.toMatchObject({ code: 'NOT_LOGGED_IN' });
  });
});

describe('JpaySimulator timeouts and connection failures', () => {
  it('reports unknown/timeout when the application goes silent, and error when it cannot be reached', async () => {
    const h = await harness('aqsi', 150);
    try {
      expect(await h.client.transaction({ type: 'purchase', amount: 160 })).toMatchObject({
        outcome: 'unknown',
        reason: 'timeout',
      });
      expect(
        await recoverTransaction(h.client, PASSWORD, {
          request: { type: 'purchase', amount: 160 },
        }),
      ).toMatchObject({ resolution: 'approved' });
    } finally {
      await h.sim.close();
    }
    const offline = new JpayClient({
      dialect: 'aqsi',
      connect: tcpConnector({ host: '127.0.0.1', port: 1, connectTimeoutMs: 500 }),
    });
    expect(await offline.transaction({ type: 'purchase', amount: 100 })).toMatchObject({
      outcome: 'error',
      error: { code: 'CONNECT_FAILED' },
    });
  });
});
