import { waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator, type TerminalSimulatorOptions } from '@payorch/testing/joinproto-sim';

import { createDriver, type DriverConfig, JoinprotoDriver, type OperationOutcome, type TerminalDriver } from './index';
import { command, recordingHooks, tcpLink } from './testing/harness';

describe(JoinprotoDriver.name, () => {
  let sim: JoinprotoTerminalSimulator;
  const drivers: TerminalDriver[] = [];

  async function setup(simOptions: TerminalSimulatorOptions = {}, options: DriverConfig['options'] = {}) {
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 30, ...simOptions });
    const { port } = await sim.listen(0);
    const make = () => {
      const driver = createDriver({
        terminalRowId: 't1',
        protocol: 'JOINPROTO',
        dialect: null,
        terminalId: 'AB040000',
        merchantId: null,
        department: null,
        credentials: null,
        link: tcpLink(port),
        options,
      });
      drivers.push(driver);
      return driver;
    };
    return { make, driver: make(), port };
  }

  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.close()));
    await sim.close();
  });

  it('approves a purchase: masked PAN, RRN, auth code, receipt; DF01 persisted before the frame is sent', async () => {
    const { driver } = await setup();
    let journalAtBeforeSend = -1;
    const { hooks, refs } = recordingHooks(() => void (journalAtBeforeSend = sim.journal.length));
    const outcome = await driver.execute(command('purchase', { amount: 1500 }), hooks);
    expect(outcome).toMatchObject({ state: 'approved', maskedPan: '544966******2078', amount: 1500, responseCode: '000' });
    expect(outcome.rrn).toMatch(/^\d{12}$/);
    expect(outcome.approvalCode).toMatch(/^\d{6}$/);
    expect(outcome.receipt?.text).toBe('ЧЕК purchase 1500');
    expect(refs).toEqual([{ df01: expect.stringMatching(/^\d{6}$/), command: 'Purchase' }]);
    expect(journalAtBeforeSend).toBe(0);
    expect(sim.journal).toEqual([expect.objectContaining({ id: refs[0]!.df01, amount: 1500, approved: true })]);
    expect(outcome.protocolRefs).toMatchObject({ df01: refs[0]!.df01, rrn: outcome.rrn, receiptNo: expect.any(String) });
  });

  it('claims with the DF01 the command goes out with, when the session refused the first id its source gave', async () => {
    // An id source that first gives an id the session refuses (not six characters): before, the claim (beforeSend)
    // stored that id for recovery (95) while the frame went out with the next one.
    const ids = ['bad', '004242'];
    const { driver } = await setup({}, { nextJoinprotoId: async () => ids.shift() ?? '004243' });
    const { hooks, refs } = recordingHooks();
    const outcome = await driver.execute(command('purchase', { amount: 1500 }), hooks);
    expect(outcome.state).toBe('approved');
    expect(refs).toEqual([{ df01: '004242', command: 'Purchase' }]);
    expect(sim.journal).toEqual([expect.objectContaining({ id: '004242' })]);
  });

  it("sends the ids of a persisted counter that wrapped around: the id source, not the driver's memory, keeps them unique", async () => {
    // A counter of two ids standing in for the terminal's six-digit counter after 999,999 commands on one link. Before,
    // the driver kept every id it had sent in a set for the life of the link (one string per command: the connector's
    // memory grew with each terminal's operations) and refused the wrapped counter's ids: every later command failed.
    let next = 0;
    const { driver } = await setup({}, { nextJoinprotoId: () => ['000001', '000002'][next++ % 2]! });
    const sent: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const { hooks, refs } = recordingHooks();
      const outcome = await driver.execute(command('purchase', { amount: 1500 + i }), hooks);
      expect(outcome.state).toBe('approved');
      sent.push(refs[0]?.df01);
    }
    expect(sent).toEqual(['000001', '000002', '000001']);
    expect(sim.journal.map((entry) => [entry.id, entry.amount])).toEqual([
      ['000001', 1500],
      ['000002', 1501],
      ['000001', 1502],
    ]);
  });

  it('journals the frames of a purchase in wire order, masked, while the command runs', async () => {
    const { driver } = await setup();
    const { hooks, frames } = recordingHooks();
    const outcome = await driver.execute(command('purchase', { amount: 1500 }), hooks);
    expect(outcome.state).toBe('approved');
    // In wire order: the terminal's link checks (Echo 99, answered) interleave; the answer ends the journal.
    expect(frames.filter((f) => f.summary !== 'Echo (99)').map((f) => [f.direction, f.protocol, f.summary])).toEqual([
      ['out', 'JOINPROTO', 'Purchase (01)'],
      ['in', 'JOINPROTO', 'Purchase (01)'],
    ]);
    expect(frames.find((f) => f.direction === 'out' && f.summary === 'Purchase (01)')!.masked).toBe(
      `DF00=01 DF01=${String(outcome.protocolRefs?.df01)} DF05=000000001500`,
    );
    expect(frames.at(-1)).toMatchObject({
      direction: 'in',
      summary: 'Purchase (01)',
      masked: expect.stringMatching(/DF04=544966\*{6}2078 .*DF0A=<\d+ bytes>/),
    });
    expect(JSON.stringify(frames)).not.toContain('5449661234562078');
    // Nothing is journaled between commands, or for a command without the hook.
    const before = frames.length;
    await driver.execute(command('purchase', { amount: 1600 }), { beforeSend: async () => undefined, onProgress: () => undefined });
    expect(frames).toHaveLength(before);
  });

  it.each([
    [1516, 'declined', '116'],
    [1551, 'declined', '100'],
    [1577, 'canceled', 'XX'],
    [1588, 'failed', 'XX'],
  ])('maps amount %i to %s (DF16 %s)', async (amount, state, code) => {
    const { driver } = await setup();
    const outcome = await driver.execute(command('purchase', { amount }), recordingHooks().hooks);
    expect(outcome).toMatchObject({ state, responseCode: code });
  });

  it('gives a cancel (XX + CANCELED) a cancel reason, not "Protocol level error"; a real XX failure keeps it', async () => {
    const { driver } = await setup();
    const canceled = await driver.execute(command('purchase', { amount: 1577 }), recordingHooks().hooks);
    expect(canceled).toMatchObject({
      state: 'canceled',
      responseCode: 'XX',
      responseMessage: 'CANCELED',
      reason: expect.stringMatching(/^Canceled on the terminal/),
    });
    const failed = await driver.execute(command('purchase', { amount: 1588 }), recordingHooks().hooks);
    expect(failed).toMatchObject({ state: 'failed', responseCode: 'XX', reason: 'Protocol level error' });
  });

  it('reports unknown (never failed) when the answer does not come in time, then recovers the approval with 95', async () => {
    const { driver } = await setup({ dropResponse: (r) => r.type === 'PurchaseRequest' }, { commandTimeoutMs: 150 });
    const { hooks, refs } = recordingHooks();
    const cmd = command('purchase', { amount: 4200 });
    const outcome = await driver.execute(cmd, hooks);
    expect(outcome).toMatchObject({ state: 'unknown', reason: expect.stringContaining('timeout'), protocolRefs: { df01: refs[0]!.df01 } });
    const recovered = await driver.recover(cmd, refs[0]!);
    expect(recovered).toMatchObject({ state: 'approved', amount: 4200, maskedPan: '544966******2078' });
    expect(sim.journal.filter((e) => e.command === 'PurchaseRequest')).toHaveLength(1);
  });

  it('recovers the true outcome through a new link after the link dropped mid-command', async () => {
    const { driver, make } = await setup({ dropResponse: (r) => r.type === 'PurchaseRequest' });
    const { hooks, refs } = recordingHooks();
    const cmd = command('purchase', { amount: 6100 });
    const running = driver.execute(cmd, hooks);
    await waitFor(() => sim.journal.length === 1, { what: 'the purchase in the terminal journal' });
    sim.disconnect();
    const outcome = await running;
    expect(outcome).toMatchObject({ state: 'unknown', reason: expect.stringContaining('transport-closed') });
    const fresh = make();
    expect(await fresh.recover(cmd, refs[0]!)).toMatchObject({ state: 'approved', amount: 6100, rrn: sim.journal[0]!.rrn });
  });

  it('recovers "not performed" as failed when the terminal has no answer for the DF01', async () => {
    const { driver } = await setup();
    expect(await driver.recover(command('purchase', { amount: 100 }), { df01: '999998', command: 'Purchase' })).toMatchObject({
      state: 'failed',
      reason: expect.stringContaining('not performed'),
    });
  });

  it('recovers unknown, not failed, when the 95 finds no answer while the command may still run (the 90 was refused); the approval later', async () => {
    // The terminal is still processing the purchase when the driver gives up on it, past the point where it can be
    // interrupted.
    const { driver } = await setup({ interruptWhileRunning: 'refuse', processingDelayMs: 600 }, { commandTimeoutMs: 100 });
    const { hooks, refs } = recordingHooks();
    const cmd = command('purchase', { amount: 7300 });
    expect(await driver.execute(cmd, hooks)).toMatchObject({ state: 'unknown', reason: expect.stringContaining('timeout') });
    // The terminal has no answer to repeat yet: before 2026-12-07 this was "failed: not performed".
    expect(await driver.recover(cmd, refs[0]!)).toMatchObject({ state: 'unknown', reason: expect.stringContaining('Cannot interrupt') });
    await waitFor(() => sim.journal[0]?.responseCode === '000', { what: 'the purchase approved on the terminal' });
    expect(await driver.recover(cmd, refs[0]!)).toMatchObject({ state: 'approved', amount: 7300 });
    expect(sim.journal.filter((e) => e.command === 'PurchaseRequest')).toHaveLength(1);
  });

  it('refunds and voids a purchase using its stored references (06 with DF08 RRN)', async () => {
    const { driver } = await setup();
    const purchase = command('purchase', { amount: 3000 });
    const paid = await driver.execute(purchase, recordingHooks().hooks);
    const original = {
      operationId: purchase.operationId,
      type: 'purchase' as const,
      amount: 3000,
      rrn: paid.rrn,
      approvalCode: paid.approvalCode,
      protocolRefs: paid.protocolRefs,
    };
    const refund = await driver.execute(command('refund', { amount: 1000, original }), recordingHooks().hooks);
    const voided = await driver.execute(command('void', { original }), recordingHooks().hooks);
    expect([refund.reason, voided.reason]).toEqual([undefined, undefined]);
    expect([refund.state, voided.state]).toEqual(['approved', 'approved']);
    expect(sim.journal.map((e) => [e.command, e.amount])).toEqual([
      ['PurchaseRequest', 3000],
      ['RefundRequest', 1000],
      ['RefundRequest', 3000],
    ]);
  });

  it('runs preauth then capture (04 by RRN) and preauth cancel (05)', async () => {
    const { driver } = await setup();
    const hold = command('preauth', { amount: 5000 });
    const held = await driver.execute(hold, recordingHooks().hooks);
    expect(held.state).toBe('approved');
    const original = { operationId: hold.operationId, type: 'preauth' as const, amount: 5000, rrn: held.rrn, protocolRefs: held.protocolRefs };
    expect(await driver.execute(command('preauth_capture', { amount: 4000, original }), recordingHooks().hooks)).toMatchObject({
      state: 'approved',
      amount: 4000,
    });
    const hold2 = await driver.execute(command('preauth', { amount: 900 }), recordingHooks().hooks);
    const cancel = await driver.execute(command('preauth_cancel', { original: { operationId: 'x', type: 'preauth', rrn: hold2.rrn } }), recordingHooks().hooks);
    expect(cancel.state).toBe('approved');
  });

  it('cancels a purchase waiting for a card (90): requested, the purchase ends canceled', async () => {
    const { driver } = await setup();
    const cmd = command('purchase', { amount: 2055 });
    const { hooks, progress } = recordingHooks();
    const running = driver.execute(cmd, hooks);
    // The driver reports `processing` once the DF01 is recorded and the frame goes out; 90 follows it on the same link.
    await waitFor(() => progress.length > 0, { what: 'the purchase sent to the terminal' });
    expect(await driver.cancel(cmd.operationId)).toBe('requested');
    expect(await running).toMatchObject({ state: 'canceled' });
    expect(await driver.cancel(cmd.operationId)).toBe('not_running');
  });

  it('refuses an unsupported type before anything is sent, naming the protocol', async () => {
    const { driver } = await setup();
    const { hooks, refs } = recordingHooks();
    const outcome: OperationOutcome = await driver.execute(command('sbp_payment', { amount: 100 }), hooks);
    expect(outcome).toEqual({ state: 'failed', reason: 'JOINPROTO does not support operation type "sbp_payment"' });
    expect(refs).toEqual([]);
  });

  it('refuses to void a refund before anything is sent: its 06 would pay the refund out again', async () => {
    const { driver } = await setup();
    const { hooks, refs } = recordingHooks();
    const original = { operationId: 'r1', type: 'refund' as const, amount: 200, rrn: '123456789012', protocolRefs: { rrn: '123456789012' } };
    const outcome: OperationOutcome = await driver.execute({ ...command('void'), original }, hooks);
    expect(outcome).toMatchObject({ state: 'failed', reason: expect.stringContaining('cannot void a refund') });
    expect(refs).toEqual([]);
    expect(sim.journal).toEqual([]);
  });

  it('sends nothing once closed, even when close() comes while its link is still opening', async () => {
    const { port } = await setup();
    let openLink!: () => void;
    const linkOpens = new Promise<void>((resolve) => (openLink = resolve));
    const driver = createDriver({
      terminalRowId: 't1',
      protocol: 'JOINPROTO',
      dialect: null,
      terminalId: 'AB040000',
      merchantId: null,
      department: null,
      credentials: null,
      link: async () => (await linkOpens, tcpLink(port)()),
      options: {},
    });
    drivers.push(driver);
    const { hooks, refs } = recordingHooks();
    const running = driver.execute(command('purchase', { amount: 1500 }), hooks);
    await driver.close();
    openLink();
    expect(await running).toMatchObject({ state: 'failed', reason: expect.stringContaining('not sent') });
    expect(refs).toEqual([]);
    expect(sim.journal).toEqual([]);
  });

  it('fails (not unknown) when the link cannot be opened', async () => {
    const { driver } = await setup();
    await sim.close();
    const { hooks, refs } = recordingHooks();
    expect(await driver.execute(command('purchase', { amount: 100 }), hooks)).toMatchObject({ state: 'failed', reason: expect.stringContaining('not sent') });
    expect(refs).toEqual([]);
  });
});
