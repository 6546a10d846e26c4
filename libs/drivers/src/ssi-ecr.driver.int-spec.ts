import { luhnValid } from '@payorch/logging';
import { waitFor } from '@payorch/testing';
import { SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

import { createDriver, type DriverConfig, SsiEcrDriver, type TerminalDriver } from './index';
import { command, recordingHooks, tcpLink } from './testing/harness';

describe(SsiEcrDriver.name, () => {
  let sim: SsiEcrSimulator;
  let linkUp = true;
  const drivers: TerminalDriver[] = [];

  async function setup(options: DriverConfig['options'] = {}, simOptions: ConstructorParameters<typeof SsiEcrSimulator>[0] = {}) {
    sim = new SsiEcrSimulator({ port: 0, ...simOptions });
    const { port } = await sim.start();
    linkUp = true;
    const link = () => (linkUp ? tcpLink(port)() : Promise.reject(new Error('tunnel down')));
    const make = () => {
      const driver = createDriver({
        terminalRowId: 't1',
        protocol: 'SSI_ECR',
        dialect: null,
        terminalId: null,
        merchantId: null,
        department: null,
        credentials: null,
        link,
        options: { pollIntervalMs: 1, commandTimeoutMs: 5_000, reconnectWindowMs: 300, ...options },
      });
      drivers.push(driver);
      return driver;
    };
    return { make, driver: make() };
  }

  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.close()));
    await sim.stop();
  });

  it('approves a purchase; the ticket is persisted before the request and progress follows GetStatus', async () => {
    const { driver } = await setup();
    const { hooks, refs, progress } = recordingHooks();
    const outcome = await driver.execute(command('purchase', { amount: 24500, currency: 'UAH' }), hooks);
    expect(outcome).toMatchObject({ state: 'approved', amount: 24500, maskedPan: '440272******0184', responseCode: '00' });
    expect(outcome.rrn).toMatch(/^\d+$/);
    expect(outcome.approvalCode).toMatch(/^A\d+$/);
    expect(outcome.protocolRefs).toMatchObject({ invoiceNum: expect.any(String) });
    expect(JSON.parse(String(refs[0]!.ticket))).toMatchObject({ request: { method: 'Purchase', params: { transAmount: 24500, transCurrency: '980' } } });
    expect(progress.map((p) => p.kind === 'status' && p.subStatus)).toEqual(
      expect.arrayContaining(['waiting_card', 'waiting_pin', 'connecting_host', 'printing']),
    );
    expect(outcome.receipt?.text).toContain('CARD 440272******0184');
  });

  it.each([
    [1551, 'declined'],
    [1552, 'declined'],
    [1553, 'declined'],
  ])('maps amount %i to %s', async (amount, state) => {
    const { driver } = await setup();
    expect(await driver.execute(command('purchase', { amount }), recordingHooks().hooks)).toMatchObject({ state });
  });

  it('journals the frames of a purchase masked: the request, the GetStatus polls, the result with the PAN masked', async () => {
    const { driver } = await setup();
    const { hooks, frames } = recordingHooks();
    expect(await driver.execute(command('purchase', { amount: 24500, currency: 'UAH' }), hooks)).toMatchObject({ state: 'approved' });
    const journal = frames.map((f) => [f.direction, f.summary]);
    // The runner's baseline query first, then the request, its polls, and the result carrying the masked PAN.
    const request = journal.findIndex(([direction, summary]) => direction === 'out' && summary === 'Purchase');
    expect(request).toBeGreaterThanOrEqual(0);
    expect(journal.slice(request)).toContainEqual(['out', 'GetStatus']);
    expect(frames.findIndex((f) => f.direction === 'in' && f.masked.includes('440272******0184'))).toBeGreaterThan(request);
    expect(frames.every((f) => f.protocol === 'SSI_ECR')).toBe(true);
    const runs = JSON.stringify(frames).match(/\d{13,19}/g) ?? [];
    expect(runs.filter((run) => luhnValid(run))).toEqual([]);
  });

  it('maps a request the terminal refuses at the ack (58 printer out of paper) to failed', async () => {
    const { driver } = await setup();
    expect(await driver.execute(command('purchase', { amount: 1558 }), recordingHooks().hooks)).toMatchObject({ state: 'failed', responseCode: 'E18' });
  });

  it('reports unknown when the link stays down mid-operation, then recovers the true outcome from the ticket', async () => {
    const { driver, make } = await setup();
    // The request goes out on the open connection; the simulator drops it at S02 and no reconnect succeeds.
    const { hooks, refs } = recordingHooks(() => void (linkUp = false));
    const cmd = command('purchase', { amount: 1557 });
    const outcome = await driver.execute(cmd, hooks);
    expect(outcome).toMatchObject({ state: 'unknown', reason: expect.stringContaining('CONNECTION_LOST') });
    linkUp = true;
    const recovered = await make().recover(cmd, refs[0]!);
    expect(recovered).toMatchObject({ state: 'approved', amount: 1557, maskedPan: '440272******0184' });
  });

  it('closing the driver (agent gone) aborts the running operation at once: unknown, then recovered from the ticket', async () => {
    // The terminal goes on by itself (timed steps) and approves; the closed driver must not poll a dead
    // link for the whole reconnect window, holding the terminal's queue.
    const { driver, make } = await setup({ reconnectWindowMs: 60_000, commandTimeoutMs: 60_000 }, { advance: { mode: 'timed', stepMs: 25 } });
    const { hooks, refs } = recordingHooks();
    const cmd = command('purchase', { amount: 2500, currency: 'UAH' });
    const running = driver.execute(cmd, hooks);
    await waitFor(() => refs.length === 1 && sim.status !== 'S00', { what: 'the purchase running on the terminal' });
    linkUp = false;
    const closedAt = Date.now();
    await driver.close();
    expect(await running).toMatchObject({ state: 'unknown', reason: expect.stringContaining('aborted') });
    expect(Date.now() - closedAt).toBeLessThan(1_000);
    linkUp = true;
    await waitFor(() => sim.status === 'S00', { what: 'the terminal idle (S00)' });
    expect(await make().recover(cmd, refs[0]!)).toMatchObject({ state: 'approved', amount: 2500 });
  });

  it('a close-day whose answer is lost recovers as unknown, never failed: the terminal closed its day all the same', async () => {
    // The terminal runs the Z report by itself (timed steps) after the driver is gone with its link.
    const { driver, make } = await setup({}, { advance: { mode: 'timed', stepMs: 25 } });
    await driver.execute(command('purchase', { amount: 1200 }), recordingHooks().hooks);
    const { hooks, refs } = recordingHooks();
    const cmd = command('settlement');
    sim.holdAt('S04');
    const running = driver.execute(cmd, hooks);
    await waitFor(() => refs.length === 1 && sim.status === 'S04', { what: 'the Z report running on the terminal' });
    linkUp = false;
    await driver.close();
    expect(await running).toMatchObject({ state: 'unknown' });
    sim.holdAt(undefined);
    await waitFor(() => sim.status === 'S00', { what: 'the terminal idle (S00)' });
    expect([sim.persistent.batchNumber, sim.persistent.batch]).toEqual([2, []]);
    linkUp = true;
    // Failed would let the settlement send a second close-day; the report buffer cannot prove whose Z report it holds.
    expect(await make().recover(cmd, refs[0]!)).toMatchObject({ state: 'unknown', protocolRefs: refs[0] });
  });

  it('recovers a read whose answer was lost (terminal info, X report) as failed, asked again, not as an UNKNOWN that blocks the terminal', async () => {
    const { make } = await setup();
    for (const [type, method] of [
      ['terminal_info', 'GetTerminalInfo'],
      ['report_x', 'XReport'],
    ] as const) {
      expect(await make().recover(command(type), { command: method })).toMatchObject({ state: 'failed' });
    }
  });

  it('refunds (RRN) and voids (invoiceNum) a purchase using its stored references', async () => {
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
    expect(await driver.execute(command('refund', { amount: 1000, original }), recordingHooks().hooks)).toMatchObject({ state: 'approved' });
    expect(await driver.execute(command('void', { original }), recordingHooks().hooks)).toMatchObject({ state: 'approved' });
    expect(await driver.execute(command('void', { original: { ...original, protocolRefs: { invoiceNum: '999999' } } }), recordingHooks().hooks)).toMatchObject({
      state: 'declined',
    });
  });

  it('runs preauth then capture (SalePreauth with RRN + auth code) and preauth cancel (VoidPreauth)', async () => {
    const { driver } = await setup();
    const hold = command('preauth', { amount: 5000 });
    const held = await driver.execute(hold, recordingHooks().hooks);
    expect(held.state).toBe('approved');
    const original = {
      operationId: hold.operationId,
      type: 'preauth' as const,
      amount: 5000,
      rrn: held.rrn,
      approvalCode: held.approvalCode,
      protocolRefs: held.protocolRefs,
    };
    expect(await driver.execute(command('preauth_capture', { amount: 4500, original }), recordingHooks().hooks)).toMatchObject({ state: 'approved' });
    const hold2 = command('preauth', { amount: 900 });
    const held2 = await driver.execute(hold2, recordingHooks().hooks);
    const cancel = await driver.execute(
      command('preauth_cancel', { original: { operationId: hold2.operationId, type: 'preauth', protocolRefs: held2.protocolRefs } }),
      recordingHooks().hooks,
    );
    expect(cancel.state).toBe('approved');
  });

  it('cancels while waiting for the card (Interrupt in S02), and answers too_late once the bank is contacted', async () => {
    const { driver } = await setup();
    const cmd = command('purchase', { amount: 1555 });
    // The terminal holds each phase until the test has acted in it (its script would otherwise time out on its own).
    sim.holdAt('S02');
    const waiting = recordingHooks();
    const running = driver.execute(cmd, waiting.hooks);
    // Interrupt is allowed once the driver itself has polled S02 (spec 5.4.2), not just the terminal being there.
    await waitFor(() => sim.status === 'S02' && waiting.progress.some((p) => p.kind === 'status' && p.subStatus === 'waiting_card'), {
      what: 'the driver seeing S02',
    });
    expect(await driver.cancel(cmd.operationId)).toBe('requested');
    expect(await running).toMatchObject({ state: 'canceled' });

    const slow = command('purchase', { amount: 1561 });
    sim.holdAt('S04');
    const contacting = recordingHooks();
    const slowRun = driver.execute(slow, contacting.hooks);
    await waitFor(() => sim.status === 'S04' && contacting.progress.some((p) => p.kind === 'status' && p.subStatus === 'connecting_host'), {
      what: 'the driver seeing S04',
    });
    expect(await driver.cancel(slow.operationId)).toBe('too_late');
    sim.holdAt(undefined);
    expect(await slowRun).toMatchObject({ state: 'approved' });
  });

  it('refuses sbp_payment up front, naming the protocol', async () => {
    const { driver } = await setup();
    expect(await driver.execute(command('sbp_payment', { amount: 100 }), recordingHooks().hooks)).toEqual({
      state: 'failed',
      reason: 'SSI_ECR does not support operation type "sbp_payment"',
    });
  });
});
