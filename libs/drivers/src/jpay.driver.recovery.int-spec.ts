/**
 * JpayDriver: what a lost answer leaves behind and how recovery reads the terminal's log — a close-day
 * whose answer was lost, a transaction lost before the terminal read it, a log emptied by another
 * client, a terminal clock behind ours, and an answer we cannot echo mid-transaction. Against the
 * simulator (or a fake terminal) over loopback TCP.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

import { encodeFrame } from '@payorch/jpay';
import { waitFor } from '@payorch/testing';
import { DEFAULT_ADMIN_PASSWORD, JpaySimulator } from '@payorch/testing/jpay-sim';

import { createDriver, type DriverConfig, JpayDriver, type TerminalDriver } from './index';
import { command, jpayDriverConfig, recordingHooks } from './testing/harness';

const ELEVEN_MINUTES_MS = 11 * 60_000;

/**
 * A loopback proxy to the simulator that can lose one command: `command` (never forwarded: the terminal
 * never reads it) or `answer` (forwarded, and the connection cut once the terminal answers: it ran).
 */
class LossyProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private rule: { root: string; lose: 'command' | 'answer' } | undefined;

  constructor(private readonly target: number) {
    this.server = createServer((client) => this.relay(client));
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as { port: number }).port)));
  }

  /** Loses the next command whose root is `root` as told; later connections pass. */
  loseNext(root: string, lose: 'command' | 'answer'): void {
    this.rule = { root, lose };
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: Socket): void {
    const upstream = connect(this.target, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    let seen = '';
    let loseAnswer = false;
    client.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      const rule = this.rule;
      if (rule && (seen.includes(`<${rule.root}>`) || seen.includes(`<${rule.root} `))) {
        this.rule = undefined;
        if (rule.lose === 'command') {
          client.destroy();
          upstream.destroy();
          return;
        }
        loseAnswer = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      // The terminal answered: it has run the command. The answer never reaches the driver.
      if (loseAnswer) client.destroy();
      else client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}

describe(`${JpayDriver.name} recovery`, () => {
  let sim: JpaySimulator;
  const drivers: TerminalDriver[] = [];
  const closers: (() => Promise<void>)[] = [];

  async function setup(options: { simulator?: { now?: () => Date }; config?: Partial<DriverConfig> } = {}) {
    sim = new JpaySimulator({ dialect: 'aqsi', keepaliveIntervalMs: 2, ...options.simulator });
    closers.push(() => sim.close());
    const simPort = await sim.listen(0);
    const proxy = new LossyProxy(simPort);
    closers.push(() => proxy.close());
    const port = await proxy.listen();
    const make = (more: Partial<DriverConfig> = {}) => {
      const driver = createDriver({ ...jpayDriverConfig(port, DEFAULT_ADMIN_PASSWORD, options.config), ...more });
      drivers.push(driver);
      return driver;
    };
    return { make, driver: make(), proxy };
  }

  afterEach(async () => {
    sim.hold.release();
    await Promise.all(drivers.splice(0).map((d) => d.close()));
    for (const close of closers.splice(0).reverse()) await close();
  });

  describe('close-day (settlement)', () => {
    it('recovers a close-day that ran as approved, never failed: the log entry recorded before it is gone', async () => {
      const { driver, make } = await setup();
      await driver.execute(command('purchase', { amount: 1500 }), recordingHooks().hooks);
      const { hooks, refs } = recordingHooks();
      const cmd = command('settlement');
      expect(await driver.execute(cmd, hooks)).toMatchObject({ state: 'approved' });
      expect(refs).toEqual([
        { command: 'settlement', logBeforeEntries: 1, logBeforeSeq: '000001', logBeforeRrn: expect.any(String), logBeforeTime: expect.any(String) },
      ]);
      // Whatever became of its answer, asking the terminal again says the day is closed: no second close-day.
      expect(await make().recover(cmd, refs[0]!)).toMatchObject({ state: 'approved', protocolRefs: { recoveredFrom: 'report' } });
    });

    it('reports a close-day whose answer was lost unknown, and recovers it approved (closed without totals)', async () => {
      const { driver, make, proxy } = await setup();
      await driver.execute(command('purchase', { amount: 1500 }), recordingHooks().hooks);
      const { hooks, refs } = recordingHooks();
      const cmd = command('settlement');
      proxy.loseNext('settlement', 'answer');
      const lost = await driver.execute(cmd, hooks);
      expect(lost).toMatchObject({ state: 'unknown', protocolRefs: refs[0]! });
      expect(sim.ledger.log).toEqual([]);
      expect(await make().recover(cmd, refs[0]!)).toMatchObject({ state: 'approved', data: { report: null, xreport: null } });
    });

    it('recovers a close-day the terminal never read as failed (the day is open), so a new one may go', async () => {
      const { driver, make, proxy } = await setup();
      await driver.execute(command('purchase', { amount: 1500 }), recordingHooks().hooks);
      const { hooks, refs } = recordingHooks();
      const cmd = command('settlement');
      proxy.loseNext('settlement', 'command');
      expect(await driver.execute(cmd, hooks)).toMatchObject({ state: 'unknown' });
      expect(await make().recover(cmd, refs[0]!)).toMatchObject({ state: 'failed', reason: expect.stringContaining('the day was not closed') });
      expect(await driver.execute(command('settlement'), recordingHooks().hooks)).toMatchObject({ state: 'approved' });
    });

    it('keeps a lost close-day of an empty log unknown: nothing in the log can tell', async () => {
      const { driver, proxy } = await setup();
      const { hooks, refs } = recordingHooks();
      const cmd = command('settlement');
      proxy.loseNext('settlement', 'command');
      expect(await driver.execute(cmd, hooks)).toMatchObject({ state: 'unknown' });
      expect(refs[0]).toEqual({ command: 'settlement', logBeforeEntries: 0 });
      expect(await driver.recover(cmd, refs[0]!)).toMatchObject({ state: 'unknown' });
      // A claim from before the driver recorded any evidence ({ command } alone) is unknown too, never "never sent".
      expect(await driver.recover(cmd, { command: 'settlement' })).toMatchObject({ state: 'unknown' });
    });
  });

  it('does not take an older transaction of the same amount for a lost one: 15.00 approved, a second 15.00 never read', async () => {
    const { driver, make } = await setup({ config: { options: { commandTimeoutMs: 200 } } });
    expect(await driver.execute(command('purchase', { amount: 1500 }), recordingHooks().hooks)).toMatchObject({ protocolRefs: { seq: '000001' } });
    sim.hold.at('received');
    const { hooks, refs } = recordingHooks();
    const cmd = command('purchase', { amount: 1500 });
    // The terminal never reads it; the driver times out, and the closed connection loses it.
    expect(await driver.execute(cmd, hooks)).toMatchObject({ state: 'unknown', reason: expect.stringContaining('timeout') });
    sim.hold.release();
    expect(sim.ledger.log).toHaveLength(1);
    const recovered = await make().recover(cmd, refs[0]!);
    expect(recovered).toMatchObject({ state: 'failed', reason: expect.stringContaining('not performed') });
  });

  it('does not conclude "not performed" when another client closed the day after an unknown purchase', async () => {
    const { driver, make } = await setup();
    await driver.execute(command('purchase', { amount: 1000 }), recordingHooks().hooks);
    const { hooks, refs } = recordingHooks();
    const cmd = command('purchase', { amount: 2058 }); // .58: approved and logged, then the connection drops
    expect(await driver.execute(cmd, hooks)).toMatchObject({ state: 'unknown' });
    // The till's other client closes the day: the log (and our approved purchase in it) is emptied.
    expect(await make().execute(command('settlement'), recordingHooks().hooks)).toMatchObject({ state: 'approved' });
    const recovered = await make().recover(cmd, refs[0]!);
    expect(recovered).toMatchObject({ state: 'unknown', reason: expect.stringContaining('log was emptied') });
  });

  it('finds a transaction logged by a terminal clock 11 minutes behind ours (by receipt number, not time)', async () => {
    const { driver, make } = await setup({ simulator: { now: () => new Date(Date.now() - ELEVEN_MINUTES_MS) } });
    await driver.execute(command('purchase', { amount: 1000 }), recordingHooks().hooks);
    const { hooks, refs } = recordingHooks();
    const cmd = command('purchase', { amount: 2058 });
    expect(await driver.execute(cmd, hooks)).toMatchObject({ state: 'unknown' });
    // The entry's time is below our lower bound (now − 10 min) …
    expect(sim.ledger.log[1]!.time < String(refs[0]!.notBeforeTime)).toBe(true);
    // … and it is the one entry after the anchor: approved.
    expect(await make().recover(cmd, refs[0]!)).toMatchObject({ state: 'approved', amount: 2058, protocolRefs: { seq: '000002' } });
  });

  describe('a purchase without force-sbp, which the customer may pay by SBP (§8.10)', () => {
    it('recovers as approved a purchase paid by SBP (65) whose answer was lost, numbered below the card receipts', async () => {
      const { driver, make } = await setup({ config: { options: { commandTimeoutMs: 200 } } });
      for (const amount of [1000, 1100, 1200]) await driver.execute(command('purchase', { amount }), recordingHooks().hooks);
      const { hooks, refs } = recordingHooks();
      const cmd = command('purchase', { amount: 1565 });
      sim.hold.at('answer');
      expect(await driver.execute(cmd, hooks)).toMatchObject({ state: 'unknown', reason: expect.stringContaining('timeout') });
      sim.hold.release();
      // Paid by the QR: SBP receipt 1, below card receipt 3, the card anchor.
      expect(sim.ledger.log.at(-1)).toMatchObject({ iface: 'sbp', seq: '000001', amount: 1565 });
      expect(refs[0]).toMatchObject({ afterSeq: '000003', afterSbpSeq: '000000' });
      // Until 2026-12-07 only entries above card receipt 3 counted: "not performed" (failed) though the customer paid.
      expect(await make().recover(cmd, refs[0]!)).toMatchObject({ state: 'approved', amount: 1565, protocolRefs: { seq: '000001', recoveredFrom: 'report' } });
    });

    it('does not take an older SBP payment numbered above the card anchor for one the terminal never read', async () => {
      const { driver, make } = await setup({ config: { options: { commandTimeoutMs: 200 } } });
      await driver.execute(command('purchase', { amount: 1000 }), recordingHooks().hooks);
      for (let i = 0; i < 2; i++) {
        expect(await driver.execute(command('sbp_payment', { amount: 1500 }), recordingHooks().hooks)).toMatchObject({ protocolRefs: { iface: 'sbp' } });
      }
      sim.hold.at('received');
      const { hooks, refs } = recordingHooks();
      const cmd = command('purchase', { amount: 1500 });
      expect(await driver.execute(cmd, hooks)).toMatchObject({ state: 'unknown', reason: expect.stringContaining('timeout') });
      sim.hold.release();
      // The SBP receipts moved the SBP anchor; the card anchor is the one card purchase.
      expect(refs[0]).toMatchObject({ afterSeq: '000001', afterSbpSeq: '000002' });
      // Until 2026-12-07 SBP receipt 2 > card receipt 1 was taken for it: approved, never run.
      expect(await make().recover(cmd, refs[0]!)).toMatchObject({
        state: 'failed',
        reason: expect.stringContaining('after card receipt 000001 and SBP receipt 000002'),
      });
    });

    it('records only the card anchor for card-only requests, and both for an SBP payment', async () => {
      const { driver } = await setup();
      const purchase = command('purchase', { amount: 3000 });
      const paid = await driver.execute(purchase, recordingHooks().hooks);
      const original = { operationId: purchase.operationId, type: 'purchase' as const, amount: 3000, rrn: paid.rrn, protocolRefs: paid.protocolRefs };
      const refund = recordingHooks();
      await driver.execute(command('refund', { amount: 1000, original }), refund.hooks);
      expect(refund.refs[0]).toMatchObject({ afterSeq: '000001' });
      expect(refund.refs[0]).not.toHaveProperty('afterSbpSeq');
      const sbp = recordingHooks();
      await driver.execute(command('sbp_payment', { amount: 700 }), sbp.hooks);
      expect(sbp.refs[0]).toMatchObject({ afterSeq: '000002', afterSbpSeq: '000000' });
    });
  });

  it('recovers an X report whose answer was lost as failed (it changes nothing), so the terminal takes new work; a new one reads', async () => {
    const { driver, proxy } = await setup();
    const { hooks, refs } = recordingHooks();
    const cmd = command('report_x');
    proxy.loseNext('report', 'answer');
    expect(await driver.execute(cmd, hooks)).toMatchObject({ state: 'unknown' });
    // Before 2026-12-07: unknown for good ("cannot be asked for it again"), which kept every payment off the terminal.
    expect(await driver.recover(cmd, refs[0]!)).toMatchObject({ state: 'failed', reason: expect.stringContaining('changes nothing on the terminal') });
    expect(await driver.execute(command('report_x'), recordingHooks().hooks)).toMatchObject({ state: 'approved' });
  });

  it('keeps a lost transaction unknown, not failed, when the terminal clock is behind and nothing anchors the log', async () => {
    const { driver, make } = await setup({ simulator: { now: () => new Date(Date.now() - ELEVEN_MINUTES_MS) } });
    const { hooks, refs } = recordingHooks();
    const cmd = command('purchase', { amount: 2058 });
    expect(await driver.execute(cmd, hooks)).toMatchObject({ state: 'unknown' });
    expect(refs[0]).toMatchObject({ afterSeq: '000000' });
    expect(await make().recover(cmd, refs[0]!)).toMatchObject({ state: 'unknown' });
  });
});

describe(`${JpayDriver.name} with a terminal answering what we cannot echo`, () => {
  let server: Server;
  const sockets = new Set<Socket>();
  let driver: TerminalDriver | undefined;

  afterEach(async () => {
    await driver?.close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it.each(['aq:event', 'событие'])('reports unknown, not "not sent", when a message <%s/> comes mid-transaction', async (name) => {
    const received: string[] = [];
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk.toString('utf8'));
        // The transaction arrived: a message our reader accepts and our writer cannot echo in a notimplemented reply.
        if (received.length === 1) socket.write(encodeFrame(Buffer.from(`<${name}/>`, 'utf8')));
      });
    });
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
    driver = createDriver(jpayDriverConfig(port, DEFAULT_ADMIN_PASSWORD, { credentials: null }));
    const { hooks, refs } = recordingHooks();
    const outcome = await driver.execute(command('purchase', { amount: 1500 }), hooks);
    await waitFor(() => received.some((r) => r.includes('<transaction>')), { what: 'the transaction at the terminal' });
    expect(outcome).toMatchObject({ state: 'unknown', protocolRefs: refs[0]! });
  });
});
