import { Redis } from 'ioredis';

import { createDriver, type DriverConfig, type TerminalDriver } from '@payorch/drivers';
import { deleteRedisPrefix, testRedisPrefix, testRedisUrl, waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { CommandRouter } from '../bus/command-router';
import { bridgeLinksToLoopback, ConnectorHarness, dialAgent } from '../testing/connector-harness.testing';
import { TerminalHub } from './terminal-hub';

/**
 * A terminal's row changed (PATCH /v1/terminals/{id} of its connection or driver settings), or the terminal was
 * withdrawn (disabled, deleted, moved away), while a payment ran on it. The connector re-reads the agent's terminals
 * and rebuilds or drops the terminal's handle. Before, it closed the old driver at once, under the running payment:
 * the payment became `unknown` and had to be recovered, though nothing was wrong with it. Now the old handle takes no
 * new command, its driver closes once the running command has ended, and the terminal's next command starts on the
 * new driver only after that (one Joinproto terminal takes one connection: the simulator drops the older link when a
 * newer one comes in). Only a tunnel that is gone still cuts the command.
 */
describe('device-connector: a terminal rebuilt or withdrawn while a command runs on it', () => {
  const h = new ConnectorHarness({ poolSize: 4 });
  const prefix = testRedisPrefix('rebuild');
  let hub: TerminalHub;
  let router: CommandRouter;
  let sim: JoinprotoTerminalSimulator;
  let simPort: number;
  const tunnels: Array<{ close(): Promise<void> }> = [];
  /** What the drivers did, in order: `execute <operation> on #<driver>` as a command starts on one, `close #<driver>`. */
  const log: string[] = [];
  const driverNo = new WeakMap<TerminalDriver, number>();
  let drivers = 0;

  /** The production driver, its executes and closes logged. */
  const driverFactory = (config: DriverConfig) => {
    const driver = createDriver(config);
    const no = ++drivers;
    driverNo.set(driver, no);
    const execute = driver.execute.bind(driver);
    const close = driver.close.bind(driver);
    driver.execute = async (command, hooks) => {
      log.push(`execute ${command.operationId} on #${no}`);
      return execute(command, hooks);
    };
    driver.close = async () => {
      log.push(`close #${no}`);
      return close();
    };
    return driver;
  };

  beforeAll(async () => {
    await h.start();
    const redis = new Redis(testRedisUrl());
    h.onStop(async () => {
      await deleteRedisPrefix(redis, prefix);
      await redis.quit();
    });
    await h.connector('rebuild-a', prefix, { driverFactory });
    hub = h.app.get(TerminalHub);
    router = h.app.get(CommandRouter);
  });

  beforeEach(async () => {
    sim = new JoinprotoTerminalSimulator({ cardTimeoutMs: 10 });
    ({ port: simPort } = await sim.listen(0));
    log.length = 0;
  });

  afterEach(async () => {
    sim.hold.release();
    await Promise.all(tunnels.splice(0).map((tunnel) => tunnel.close()));
    await sim.close();
  });

  afterAll(() => h.stop());

  /** A tenant, a store, an enrolled agent and its Joinproto terminal (the simulator; its info read just now). */
  const shop = () => h.joinprotoShop(simPort);
  type Shop = Awaited<ReturnType<typeof shop>>;

  /** The agent's tunnel, every link bridged to the simulator. Resolves once the terminal is held here. */
  async function connectAgent(s: Shop) {
    const { ws, mux } = dialAgent(h.url, s.token);
    bridgeLinksToLoopback(mux, simPort);
    let closed = false;
    const tunnel = {
      /** Closes the tunnel and waits until the connector let the agent's terminals go. */
      close: async () => {
        if (closed) return;
        closed = true;
        if (ws.readyState !== ws.CLOSED) await new Promise<void>((resolve) => (ws.once('close', () => resolve()), ws.close()));
        await waitFor(() => hub.terminalsOf(s.agentId).length === 0 && hub.find(s.tenantId, s.terminalId) === undefined, {
          what: 'the terminals let go',
        });
      },
    };
    tunnels.push(tunnel);
    await waitFor(() => hub.find(s.tenantId, s.terminalId)?.driver, { what: 'the terminal held here' });
    return tunnel;
  }

  const newPayment = (s: Shop, amount: number) => h.purchase(s, amount);

  /** The bus command `operation.execute` as the connector receives it. */
  const execute = (s: Shop, operationId: string) => router.handle({ kind: 'operation.execute', tenantId: s.tenantId, terminalId: s.terminalId, operationId });

  /** Starts a payment and resolves once the terminal holds it, waiting for the card; `reply` is the connector's answer. */
  async function paymentWaitingForTheCard(s: Shop, amount: number) {
    sim.hold.at('card');
    const id = await newPayment(s, amount);
    const reply = execute(s, id);
    await waitFor(() => sim.hold.reached('card'), { what: 'the payment waiting for the card' });
    return { id, reply };
  }

  const approved = { ok: true, result: { ran: true, state: 'approved' } };

  it("a change of the terminal's row while a payment runs: the payment ends as the terminal answers, and the next one runs on the rebuilt driver once the old one closed", async () => {
    const s = await shop();
    await connectAgent(s);
    const before = hub.find(s.tenantId, s.terminalId)!;
    const oldNo = driverNo.get(before.driver!)!;
    const first = await paymentWaitingForTheCard(s, 2101);

    await h.admin.query(`UPDATE "Terminal" SET "merchantId" = 'M-2', "updatedAt" = now() WHERE id = $1`, [s.terminalId]);
    await hub.reconcile(s.agentId);
    const after = hub.find(s.tenantId, s.terminalId)!;
    expect(after).not.toBe(before);
    // The old handle takes no new command; new ones go to the rebuilt handle.
    expect(before.isClosed).toBe(true);
    expect(after.isClosed).toBe(false);
    expect(hub.holdersOf(s.terminalId)).toEqual([after]);
    const newNo = driverNo.get(after.driver!)!;
    const secondId = await newPayment(s, 2102);
    const second = execute(s, secondId);

    sim.hold.release();
    expect(await first.reply).toEqual(approved);
    expect(await second).toEqual(approved);
    // The old driver closed after its payment ended and before the next one started on the new driver.
    expect(log).toEqual([`execute ${first.id} on #${oldNo}`, `close #${oldNo}`, `execute ${secondId} on #${newNo}`]);
    expect(sim.journal.map((e) => [e.amount, e.approved])).toEqual([
      [2101, true],
      [2102, true],
    ]);
    expect(hub.drainingCount).toBe(0);
  });

  it('a terminal disabled while a payment runs: no new command, the payment ends as the terminal answers, then its driver closes', async () => {
    const s = await shop();
    await connectAgent(s);
    const before = hub.find(s.tenantId, s.terminalId)!;
    const oldNo = driverNo.get(before.driver!)!;
    const first = await paymentWaitingForTheCard(s, 2201);

    await h.admin.query(`UPDATE "Terminal" SET status = 'DISABLED', "updatedAt" = now() WHERE id = $1`, [s.terminalId]);
    await hub.reconcile(s.agentId);
    expect(hub.find(s.tenantId, s.terminalId)).toBeUndefined();
    expect(hub.holdersOf(s.terminalId)).toEqual([]);
    expect(before.isClosed).toBe(true);
    expect(await router.handle({ kind: 'terminal.refresh_info', tenantId: s.tenantId, terminalId: s.terminalId })).toMatchObject({
      ok: false,
      code: 'TERMINAL_OFFLINE',
    });
    expect(log).toEqual([`execute ${first.id} on #${oldNo}`]);

    sim.hold.release();
    expect(await first.reply).toEqual(approved);
    await waitFor(() => hub.drainingCount === 0, { what: 'the withdrawn driver closed' });
    expect(log).toEqual([`execute ${first.id} on #${oldNo}`, `close #${oldNo}`]);
    expect(sim.journal.map((e) => [e.amount, e.approved])).toEqual([[2201, true]]);
  });

  it('the tunnel closing while a rebuilt terminal drains: its old driver is closed at once (the payment, cut with the tunnel, is unknown)', async () => {
    const s = await shop();
    const tunnel = await connectAgent(s);
    const before = hub.find(s.tenantId, s.terminalId)!;
    const oldNo = driverNo.get(before.driver!)!;
    const first = await paymentWaitingForTheCard(s, 2301);
    await h.admin.query(`UPDATE "Terminal" SET "merchantId" = 'M-3', "updatedAt" = now() WHERE id = $1`, [s.terminalId]);
    await hub.reconcile(s.agentId);
    expect(hub.drainingCount).toBe(1);

    await tunnel.close();
    expect(log).toContain(`close #${oldNo}`);
    expect(await first.reply).toEqual({ ok: true, result: { ran: true, state: 'unknown' } });
    await waitFor(() => hub.drainingCount === 0, { what: 'no handle left draining' });
    expect(hub.holdersOf(s.terminalId)).toEqual([]);
  });

  it('a cancel of the payment running on a withdrawn or rebuilt terminal reaches the driver it runs on', async () => {
    const s = await shop();
    await connectAgent(s);
    const cancel = (operationId: string) => router.handle({ kind: 'operation.cancel', tenantId: s.tenantId, terminalId: s.terminalId, operationId });

    // Rebuilt: the terminal's current driver does not run it; before, the cancel went there and was TOO_LATE.
    const first = await paymentWaitingForTheCard(s, 2055);
    await h.admin.query(`UPDATE "Terminal" SET "merchantId" = 'M-4', "updatedAt" = now() WHERE id = $1`, [s.terminalId]);
    await hub.reconcile(s.agentId);
    expect(await cancel(first.id)).toEqual({ ok: true, result: { cancel: 'requested' } });
    expect(await first.reply).toEqual({ ok: true, result: { ran: true, state: 'canceled' } });

    // Withdrawn: no handle any more; before, the cancel was TERMINAL_OFFLINE.
    const second = await paymentWaitingForTheCard(s, 2055);
    await h.admin.query(`UPDATE "Terminal" SET status = 'DISABLED', "updatedAt" = now() WHERE id = $1`, [s.terminalId]);
    await hub.reconcile(s.agentId);
    expect(hub.find(s.tenantId, s.terminalId)).toBeUndefined();
    expect(await cancel(second.id)).toEqual({ ok: true, result: { cancel: 'requested' } });
    expect(await second.reply).toEqual({ ok: true, result: { ran: true, state: 'canceled' } });
    // Nothing runs any more: a cancel is answered as too late, not as an error.
    expect(await cancel(second.id)).toMatchObject({ ok: false, code: 'TOO_LATE' });
    await waitFor(() => hub.drainingCount === 0, { what: 'the withdrawn driver closed' });
  });
});
