import { parseTerminalTotals, settlementRawFromOutcome } from '@payorch/settlement';
import { waitFor } from '@payorch/testing';
import { DEFAULT_ADMIN_PASSWORD, JpaySimulator, SIM_CARD } from '@payorch/testing/jpay-sim';

import { createDriver, type DriverConfig, JpayDriver, type TerminalDriver } from './index';
import { command, jpayDriverConfig, recordingHooks } from './testing/harness';

describe(JpayDriver.name, () => {
  let sim: JpaySimulator;
  const drivers: TerminalDriver[] = [];

  async function setup(overrides: Partial<DriverConfig> = {}) {
    sim = new JpaySimulator({ dialect: 'aqsi', keepaliveIntervalMs: 2 });
    const port = await sim.listen(0);
    const make = (more: Partial<DriverConfig> = {}) => {
      const driver = createDriver({
        ...jpayDriverConfig(port, DEFAULT_ADMIN_PASSWORD, overrides),
        ...more,
      });
      drivers.push(driver);
      return driver;
    };
    return { make, driver: make() };
  }

  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.close()));
    await sim.close();
  });

  it('approves a purchase with a receipt; persists the recovery criteria before sending', async () => {
    const { driver } = await setup();
    let loggedAtBeforeSend = -1;
    const { hooks, refs, progress } = recordingHooks(() => void (loggedAtBeforeSend = sim.ledger.log.length));
    const outcome = await driver.execute(command('purchase', { amount: 1500 }), hooks);
    expect(outcome).toMatchObject({ state: 'approved', amount: 1500, maskedPan: expect.stringMatching(/1111$/) });
    expect(outcome.rrn).toBe(sim.ledger.log[0]!.rrn);
    expect(outcome.approvalCode).toBe(sim.ledger.log[0]!.authNumber);
    expect(outcome.protocolRefs).toMatchObject({ seq: sim.ledger.log[0]!.seq });
    expect(outcome.receipt?.text).toContain('RRN');
    expect(loggedAtBeforeSend).toBe(0);
    expect(JSON.parse(String(refs[0]!.request))).toEqual({ type: 'purchase', amount: 1500 });
    expect(refs[0]).toMatchObject({ notBeforeTime: expect.stringMatching(/^\d{12}$/), afterSeq: '000000' });
    expect(progress).toContainEqual({ kind: 'display', text: expect.any(String) });
  });

  it('journals each packet of a purchase masked: the card tags of dex masked, the admin password redacted', async () => {
    const { driver } = await setup();
    const { hooks, frames } = recordingHooks();
    // .55: the terminal sends its kernel tags (5A = the full PAN) in a dex message before approving.
    expect(await driver.execute(command('purchase', { amount: 1555 }), hooks)).toMatchObject({ state: 'approved' });
    const journal = frames.map((f) => [f.direction, f.summary]);
    // The full report that learns the last receipt number (password redacted), the transaction, the dex message and
    // our reply, … the response with the receipt.
    expect(journal.slice(0, 5)).toEqual([
      ['out', 'report'],
      ['in', 'report'],
      ['out', 'transaction'],
      ['in', 'dex'],
      ['out', 'dex'],
    ]);
    expect(journal.at(-1)).toEqual(['in', 'transaction']);
    expect(frames[0]!.masked).toBe('<report><password>[redacted]</password><report-type>full</report-type></report>');
    expect(frames[3]!.masked).toContain('<tag name="5A" value="411111******1111"/>');
    expect(frames.every((f) => f.protocol === 'JPAY')).toBe(true);
    const text = JSON.stringify(frames);
    expect(text).not.toContain(SIM_CARD.pan);
    // As an element's value (the simulator's merchant id happens to contain the same digits).
    expect(text).not.toContain(`>${DEFAULT_ADMIN_PASSWORD}<`);
  });

  it('closes the day with the full report taken just before, so reconciliation gets per-type totals', async () => {
    const { driver } = await setup();
    await driver.execute(command('purchase', { amount: 1500 }), recordingHooks().hooks);
    await driver.execute(command('purchase', { amount: 2500 }), recordingHooks().hooks);
    const outcome = await driver.execute(command('settlement'), recordingHooks().hooks);
    expect(outcome.state).toBe('approved');
    const totals = parseTerminalTotals(settlementRawFromOutcome('JPAY', { data: outcome.data }));
    expect(totals.bucketsReported).not.toBe(false);
    expect(totals.buckets.purchase).toEqual({ count: 2, amount: 4000 });
    expect(totals.net).toBe(4000);
  });

  it('maps a decline (51) to declined, and a host error (53) without a receipt to unknown, recovered as not performed', async () => {
    const { driver } = await setup();
    expect(await driver.execute(command('purchase', { amount: 1551 }), recordingHooks().hooks)).toMatchObject({ state: 'declined' });
    // communicationerror can follow an approval whose host answer was lost: only the log can tell.
    const { hooks, refs } = recordingHooks();
    const cmd = command('purchase', { amount: 1553 });
    expect(await driver.execute(cmd, hooks)).toMatchObject({ state: 'unknown', responseCode: 'communicationerror' });
    expect(await driver.recover(cmd, refs[0]!)).toMatchObject({ state: 'failed', reason: expect.stringContaining('not performed') });
  });

  it('reports unknown when the terminal goes silent, then recovers the approval from the report', async () => {
    const { driver } = await setup({ options: { commandTimeoutMs: 150 } });
    const { hooks, refs } = recordingHooks();
    const cmd = command('purchase', { amount: 1560 });
    const outcome = await driver.execute(cmd, hooks);
    expect(outcome).toMatchObject({ state: 'unknown', reason: expect.stringContaining('timeout') });
    expect(await driver.recover(cmd, refs[0]!)).toMatchObject({ state: 'approved', amount: 1560, rrn: sim.ledger.log[0]!.rrn });
  });

  it('recovers through a fresh driver after the connection dropped: approved (58) and not performed (59)', async () => {
    const { driver, make } = await setup();
    const approved = recordingHooks();
    const cmd = command('purchase', { amount: 2058 });
    expect(await driver.execute(cmd, approved.hooks)).toMatchObject({ state: 'unknown', reason: expect.stringContaining('transport-closed') });
    const lost = recordingHooks();
    const cmd2 = command('purchase', { amount: 2059 });
    expect(await driver.execute(cmd2, lost.hooks)).toMatchObject({ state: 'unknown' });
    const fresh = make();
    expect(await fresh.recover(cmd, approved.refs[0]!)).toMatchObject({ state: 'approved', amount: 2058 });
    expect(await fresh.recover(cmd2, lost.refs[0]!)).toMatchObject({ state: 'failed', reason: expect.stringContaining('not performed') });
  });

  it('keeps an ambiguous recovery unknown unless the receipt counter narrows it to one entry', async () => {
    const { driver } = await setup();
    await driver.execute(command('purchase', { amount: 1700 }), recordingHooks().hooks);
    const { hooks, refs } = recordingHooks();
    const cmd = command('purchase', { amount: 1700 });
    await driver.execute(cmd, hooks);
    expect(await driver.recover(cmd, { ...refs[0]!, afterSeq: null })).toMatchObject({ state: 'unknown', reason: expect.stringContaining('2 log entries') });
    expect(await driver.recover(cmd, refs[0]!)).toMatchObject({ state: 'approved', protocolRefs: { seq: '000002' } });
  });

  it('refunds (RRN) and voids (receipt seq) a purchase using its stored references', async () => {
    const { driver } = await setup();
    const purchase = command('purchase', { amount: 3000 });
    const paid = await driver.execute(purchase, recordingHooks().hooks);
    const original = { operationId: purchase.operationId, type: 'purchase' as const, amount: 3000, rrn: paid.rrn, protocolRefs: paid.protocolRefs };
    expect(await driver.execute(command('refund', { amount: 1000, original }), recordingHooks().hooks)).toMatchObject({ state: 'approved' });
    expect(await driver.execute(command('void', { original }), recordingHooks().hooks)).toMatchObject({ state: 'approved' });
    expect(sim.ledger.log.map((e) => [e.type, e.amount])).toEqual([
      ['purchase', 3000],
      ['refund', 1000],
      ['purchasereversal', 3000],
    ]);
    expect(sim.ledger.log[0]!.reversed).toBe(true);
  });

  it('cancels a transaction waiting for the card: the next keepalive is answered cancelled', async () => {
    const { driver } = await setup();
    const cmd = command('purchase', { amount: 1554 });
    const { hooks, progress } = recordingHooks();
    const running = driver.execute(cmd, hooks);
    // Once the transaction is sent, the terminal keeps asking keepalive while it waits for the card (§8.9).
    await waitFor(() => progress.some((p) => p.kind === 'status' && p.subStatus === 'processing'), { what: 'the transaction sent to the terminal' });
    expect(await driver.cancel(cmd.operationId)).toBe('requested');
    expect(await running).toMatchObject({ state: 'canceled', responseCode: 'cancelled' });
  });

  it('closing the driver ends a running transaction at once as unknown (not a cancel), recovered from the report', async () => {
    const { driver, make } = await setup();
    // An entry in the log before it lets recovery conclude either way (see the recovery spec).
    await driver.execute(command('purchase', { amount: 1000 }), recordingHooks().hooks);
    const { hooks, refs, progress } = recordingHooks();
    const cmd = command('purchase', { amount: 1554 });
    const running = driver.execute(cmd, hooks);
    await waitFor(() => progress.length > 0, { what: 'the transaction running on the terminal' });
    const closedAt = Date.now();
    await driver.close();
    expect(await running).toMatchObject({ state: 'unknown', protocolRefs: refs[0]! });
    expect(Date.now() - closedAt).toBeLessThan(1_000);
    expect(await make().recover(cmd, refs[0]!)).toMatchObject({ state: expect.stringMatching(/^(approved|failed)$/) });
  });

  it('shows and hides the SBP QR code as progress', async () => {
    const { driver } = await setup();
    const { hooks, progress } = recordingHooks();
    expect(await driver.execute(command('sbp_payment', { amount: 1200 }), hooks)).toMatchObject({ state: 'approved' });
    expect(progress.filter((p) => p.kind === 'qr').map((p) => p.kind === 'qr' && p.action)).toEqual(['show', 'hide']);
  });

  it('refuses preauth up front, naming the protocol and dialect', async () => {
    const { driver } = await setup();
    const { hooks, refs } = recordingHooks();
    expect(await driver.execute(command('preauth', { amount: 100 }), hooks)).toEqual({
      state: 'failed',
      reason: 'JPAY (dialect aqsi) does not support operation type "preauth"',
    });
    expect(refs).toEqual([]);
  });
});
