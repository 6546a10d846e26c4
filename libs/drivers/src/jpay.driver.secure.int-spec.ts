/**
 * JpayDriver: partial void in both dialects (§8.9 of both documents) and the encrypted link (§9,
 * ECDHE + AES-256-GCM per session), against the simulator over TCP.
 */
import { waitFor } from '@payorch/testing';
import { DEFAULT_ADMIN_PASSWORD, JpaySimulator, SIM_CARD } from '@payorch/testing/jpay-sim';

import { createDriver, type DriverConfig, JpayDriver, type TerminalDriver } from './index';
import { command, jpayDriverConfig, recordingHooks } from './testing/harness';

describe(`${JpayDriver.name} (partial void, encryption)`, () => {
  let sim: JpaySimulator;
  const drivers: TerminalDriver[] = [];

  async function setup(dialect: 'aqsi' | 'jpay', overrides: Partial<DriverConfig> = {}): Promise<TerminalDriver> {
    sim = new JpaySimulator({ dialect, keepaliveIntervalMs: 2 });
    const port = await sim.listen(0);
    const driver = createDriver(jpayDriverConfig(port, DEFAULT_ADMIN_PASSWORD, { dialect, ...overrides }));
    drivers.push(driver);
    return driver;
  }

  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.close()));
    await sim.close();
  });

  it.each(['aqsi', 'jpay'] as const)('sends a partial void as void + amount in the %s dialect, and the terminal executes it', async (dialect) => {
    const driver = await setup(dialect);
    const paid = await driver.execute(command('purchase', { amount: 10_000 }), recordingHooks().hooks);
    expect(paid).toMatchObject({ state: 'approved', protocolRefs: { seq: '000001' } });
    const original = { operationId: 'op-paid', type: 'purchase' as const, amount: 10_000, rrn: paid.rrn, protocolRefs: paid.protocolRefs };

    const { hooks, refs } = recordingHooks();
    const partial = await driver.execute(command('partial_void', { amount: 4_000, original }), hooks);
    expect(partial).toMatchObject({ state: 'approved', amount: 4_000 });
    expect(JSON.parse(String(refs[0]!.request))).toEqual({ type: 'void', number: '000001', amount: 4_000 });
    // What is left (6000) can still be voided; more than that is refused by the terminal.
    expect(await driver.execute(command('partial_void', { amount: 6_001, original }), recordingHooks().hooks)).toMatchObject({
      state: 'failed',
      responseCode: 'invalidarguments',
    });
    expect(await driver.execute(command('void', { original }), recordingHooks().hooks)).toMatchObject({ state: 'approved', amount: 6_000 });
    expect(sim.ledger.log.map((e) => [e.type, e.amount])).toEqual([
      ['purchase', 10_000],
      ['purchasereversal', 4_000],
      ['purchasereversal', 6_000],
    ]);
  });

  it('reads terminal answers through the JPAY result-code table: a cancel says it was canceled, a decline why', async () => {
    const driver = await setup('aqsi');
    const { hooks, progress } = recordingHooks();
    const running = driver.execute(command('purchase', { amount: 1_554, operationId: 'op-cancel' }), hooks);
    await waitFor(() => progress.some((p) => p.kind === 'status' && p.subStatus === 'processing'), { what: 'the transaction sent to the terminal' });
    expect(await driver.cancel('op-cancel')).toBe('requested');
    expect(await running).toMatchObject({
      state: 'canceled',
      responseCode: 'cancelled',
      reasonCode: 'canceled',
      reason: 'Canceled on the terminal (cardholder or operator cancel)',
    });
    expect(await driver.execute(command('purchase', { amount: 1_551 }), recordingHooks().hooks)).toMatchObject({
      state: 'declined',
      reasonCode: 'declined_by_issuer',
      reason: 'Declined by the issuer (online)',
    });
    // Without a receipt a communication error does not prove the host was never asked: recovery decides.
    expect(await driver.execute(command('purchase', { amount: 1_553 }), recordingHooks().hooks)).toMatchObject({
      state: 'unknown',
      responseCode: 'communicationerror',
    });
  });

  it('refuses a partial void without an amount before sending anything', async () => {
    const driver = await setup('jpay');
    const outcome = await driver.execute(
      command('partial_void', { original: { operationId: 'o', type: 'purchase', protocolRefs: { seq: '000001' } } }),
      recordingHooks().hooks,
    );
    expect(outcome.state).toBe('failed');
    expect(sim.received).toEqual([]);
  });

  it.each(['aqsi', 'jpay'] as const)('runs every command encrypted in its own secure session when encryption is on (%s)', async (dialect) => {
    const driver = await setup(dialect, { encryption: { enabled: true } });
    const paid = await driver.execute(command('purchase', { amount: 1_500 }), recordingHooks().hooks);
    expect(paid).toMatchObject({ state: 'approved', amount: 1_500, maskedPan: expect.stringMatching(/1111$/) });
    const transactions = sim.received.filter((c) => c.command === 'transaction');
    expect(transactions).toEqual([{ command: 'transaction', encrypted: true }]);
    // Each secure session: login in clear (with the client-handshake), the commands encrypted, logout encrypted.
    expect(sim.received.at(-3)).toEqual({ command: 'login', encrypted: false });
    expect(sim.received.at(-1)).toEqual({ command: 'logout', encrypted: true });
    // The key lives for the session only: the simulator forgot it at logout.
    expect(sim.sessionKey).toBeUndefined();

    const settled = await driver.execute(command('settlement'), recordingHooks().hooks);
    expect(settled.state).toBe('approved');
    expect(sim.received.filter((c) => c.command === 'report' || c.command === 'settlement').every((c) => c.encrypted)).toBe(true);
  });

  it('journals an encrypted session as envelopes only: no plain-text-pan, password or handshake key', async () => {
    const driver = await setup('aqsi', { encryption: { enabled: true } });
    const { hooks, frames } = recordingHooks();
    // .62: approved, and the encrypted receipt carries the full PAN as plain-text-pan (§9).
    expect(await driver.execute(command('purchase', { amount: 1562 }), hooks)).toMatchObject({ state: 'approved' });
    const login = frames.find((f) => f.direction === 'out' && f.summary === 'login')!;
    expect(login.masked).toContain('<password>[redacted]</password>');
    expect(frames.filter((f) => f.summary.endsWith('(encrypted)')).map((f) => [f.direction, f.summary])).toContainEqual(['in', 'transaction (encrypted)']);
    for (const frame of frames.filter((f) => f.summary.endsWith('(encrypted)'))) {
      expect(frame.masked).toMatch(/^<[a-z-]+( [a-z-]+="\[redacted\]")*><encrypted>\[\d+ bytes\]<\/encrypted><\/[a-z-]+>$/);
    }
    const text = JSON.stringify(frames);
    expect(text).not.toContain(SIM_CARD.pan);
    // As an element's value (the simulator's merchant id happens to contain the same digits).
    expect(text).not.toContain(`>${DEFAULT_ADMIN_PASSWORD}<`);
  });

  it('sends in clear when encryption is off', async () => {
    const driver = await setup('aqsi');
    await driver.execute(command('purchase', { amount: 1_500 }), recordingHooks().hooks);
    expect(sim.received.filter((c) => c.command === 'transaction')).toEqual([{ command: 'transaction', encrypted: false }]);
    expect(sim.received.some((c) => c.command === 'login')).toBe(false);
  });

  it('fails before sending when the secure login is refused (wrong admin password): nothing reaches the bank', async () => {
    const driver = await setup('aqsi', { encryption: { enabled: true }, credentials: { adminPassword: '00000000' } });
    const outcome = await driver.execute(command('purchase', { amount: 1_500 }), recordingHooks().hooks);
    expect(outcome).toMatchObject({ state: 'failed', reason: expect.stringContaining('not sent: secure login answered notauthorized') });
    expect(sim.ledger.log).toEqual([]);
    expect(sim.received.some((c) => c.command === 'transaction')).toBe(false);
  });
});
