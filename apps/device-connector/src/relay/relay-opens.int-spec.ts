import { connect, createServer, type Server, type Socket } from 'node:net';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { decodeMessage, duplexTransport, encodeMessageFrame, FrameDecoder, type TerminalRequest, type TillMessage, TillSession } from '@payorch/joinproto';
import { createLogger, createMetricsRegistry, type Registry } from '@payorch/logging';
import type { RedisClient } from '@payorch/redis';
import { JoinprotoTerminalSimulator, ProcessingHostSimulator } from '@payorch/testing/joinproto-sim';

import { ConnectorHarness } from '../testing/connector-harness.testing';
import { DatabaseSlots } from '../tunnel/database-slots';
import { RelayPortFactory } from './relay-port.factory';

/**
 * A hostile terminal's own side of a Joinproto link: it asks the till over `socket` and reads each answer before it
 * asks again (by DF01).
 */
class HostileTerminal {
  private readonly decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 });
  private readonly answers: TillMessage[] = [];
  private waiter: (() => void) | undefined;
  private nextId = 900_000;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const event of this.decoder.push(chunk)) {
        if (event.kind === 'frame') this.answers.push(decodeMessage(event.frame, 'till->terminal') as TillMessage);
      }
      this.waiter?.();
    });
  }

  /** 91 to `address`, then 94 when it opened: one open-close cycle. The 91's answer. */
  async openClose(address: string): Promise<TillMessage> {
    const opened = await this.ask({ type: 'OpenConnectionRequest', id: this.id(), protocol: 'tcp', address });
    if (opened.type === 'OpenConnectionResponse' && opened.connectionId !== undefined) {
      await this.ask({ type: 'CloseConnectionRequest', id: this.id(), connectionId: opened.connectionId });
    }
    return opened;
  }

  private async ask(request: TerminalRequest): Promise<TillMessage> {
    this.socket.write(encodeMessageFrame(request));
    for (;;) {
      const index = this.answers.findIndex((answer) => 'id' in answer && answer.id === request.id);
      if (index >= 0) return this.answers.splice(index, 1)[0]!;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private id(): string {
    this.nextId += 1;
    return String(this.nextId);
  }
}

/**
 * The budget of relay opens per terminal (RELAY_OPENS_PER_TERMINAL_PER_MINUTE): a terminal that opens an allowed host
 * and closes it in a loop, as fast as the till answers, is refused past its budget, and its rows and dial-outs stay
 * bounded; a terminal of the same shop doing its transactions meanwhile is not affected. Before, every cycle opened
 * (only the sessions at once were bounded): a RelaySession row and its update, a rules read and a dial-out each.
 */
describe('device-connector: relay opens per terminal', () => {
  const h = new ConnectorHarness({ poolSize: 4 });
  const silent = createLogger({ name: 'test', level: 'silent' });
  const opensPerMinute = 5;
  const refusalsPerMinute = 3;
  let registry: Registry;
  let factory: RelayPortFactory;
  /** The hostile terminal's allowed host: it counts the connections the relay dialled. */
  let target: Server;
  let targetAddress: string;
  let dialled = 0;
  let host: ProcessingHostSimulator;
  let hostAddress: string;
  let tenantId: string;
  let agentId: string;
  let hostileId: string;
  let normalId: string;
  const closers: Array<() => unknown> = [];

  beforeAll(async () => {
    await h.start();
    const shop = await h.tenantWithStore();
    tenantId = shop.tenantId;
    agentId = await h.agent(shop);
    hostileId = await h.terminal(shop, agentId);
    normalId = await h.terminal(shop, agentId);

    target = createServer((socket) => {
      dialled += 1;
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const targetPort = (target.address() as { port: number }).port;
    targetAddress = `127.0.0.1:${targetPort}`;
    host = new ProcessingHostSimulator();
    const hostPort = (await host.listen()).port;
    hostAddress = `127.0.0.1:${hostPort}`;
    for (const port of [targetPort, hostPort]) {
      await h.admin.query(`INSERT INTO "EgressRule" (id, "tenantId", cidr, port) VALUES (gen_random_uuid(), $1, '127.0.0.1/32', $2)`, [tenantId, port]);
    }

    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: h.testDb.appUrl,
      REDIS_KEY_PREFIX: 'unused',
      PAYORCH_MASTER_KEY: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
      CONNECTOR_INSTANCE_ID: 'relay-opens',
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8',
      RELAY_OPENS_PER_TERMINAL_PER_MINUTE: String(opensPerMinute),
      RELAY_RECORDED_REFUSALS_PER_MINUTE: String(refusalsPerMinute),
    });
    registry = createMetricsRegistry('test');
    // No Redis (never up): the tenant cap is counted on this instance alone, which this test does not reach.
    const redisDown = { status: 'reconnecting', on: () => undefined, off: () => undefined, zrem: async () => 0 } as unknown as RedisClient;
    factory = new RelayPortFactory(h.db, config, silent, registry, new DatabaseSlots(config), redisDown, 'relay-opens');
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await factory?.onApplicationShutdown();
    await host.close();
    await new Promise<void>((resolve) => target.close(() => resolve()));
    await h.stop();
  });

  /** A TillSession of the terminal's driver (its relay from the factory) over a loopback link to `terminalPort`. */
  function till(terminalId: string, terminalPort: number): TillSession {
    const socket = connect(terminalPort, '127.0.0.1');
    const session = new TillSession({ transport: duplexTransport(socket), relay: factory.forTerminal({ tenantId, agentId, terminalId }) });
    closers.push(() => session.close());
    return session;
  }

  /** A terminal of the shop doing its transactions through the relay (offline mode), and the till's session with it. */
  async function normalTerminal(): Promise<{ sim: JoinprotoTerminalSimulator; session: TillSession }> {
    const sim = new JoinprotoTerminalSimulator({ mode: 'offline', processingHost: hostAddress });
    closers.push(() => sim.close());
    const { port } = await sim.listen();
    const session = till(normalId, port);
    await sim.ready();
    return { sim, session };
  }

  /** A hostile terminal listening for the till, and the till's session with it. */
  async function hostileTerminal(): Promise<HostileTerminal> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    till(hostileId, (server.address() as { port: number }).port);
    const socket = await accepted;
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    closers.push(() => socket.destroy());
    return new HostileTerminal(socket);
  }

  async function rows(terminalId: string): Promise<{ outcome: string; reason: string | null }[]> {
    const { rows: found } = await h.admin.query<{ outcome: string; reason: string | null }>(
      `SELECT outcome, reason FROM "RelaySession" WHERE "terminalId" = $1 ORDER BY "startedAt", id`,
      [terminalId],
    );
    return found;
  }

  async function metric(name: string): Promise<number> {
    return (await registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
  }

  it('refuses an open-close loop past the budget with few rows and dial-outs; a normal terminal is unaffected', async () => {
    const hostile = await hostileTerminal();
    const normal = await normalTerminal();
    const cycles = 30;
    const purchases = 3;

    // The hostile loop, as fast as the till answers, while the other terminal does its purchases.
    const loop = (async () => {
      const answers: TillMessage[] = [];
      for (let i = 0; i < cycles; i += 1) answers.push(await hostile.openClose(targetAddress));
      return answers;
    })();
    const outcomes = [];
    for (let i = 0; i < purchases; i += 1) outcomes.push(await normal.session.execute({ type: 'PurchaseRequest', amount: 1500 + i }));
    const answers = await loop;

    // Before: all 30 opened (30 dial-outs, 30 rows and their updates).
    const opened = answers.filter((answer) => answer.type === 'OpenConnectionResponse' && answer.connectionId !== undefined);
    expect(opened).toHaveLength(opensPerMinute);
    expect(dialled).toBe(opensPerMinute);
    // Refused on the wire as every other refusal of a 91: XX and the denial's DF1A.
    const refused = answers.slice(opensPerMinute);
    expect(refused.map((answer) => [answer.type, 'responseCode' in answer && answer.responseCode, 'message' in answer && answer.message])).toEqual(
      Array(cycles - opensPerMinute).fill(['OpenConnectionResponse', 'XX', 'Address not allowed by till']),
    );
    expect(await metric('payorch_connector_relay_opens_over_budget_total')).toBe(cycles - opensPerMinute);
    // The sessions, then the refusals within their budget; the others are counted and summarised, not one row each.
    expect(await rows(hostileId)).toEqual([
      ...Array(opensPerMinute).fill({ outcome: 'closed', reason: null }),
      ...Array(refusalsPerMinute).fill({ outcome: 'denied', reason: `more than ${opensPerMinute} relay opens a minute` }),
    ]);
    expect(await metric('payorch_connector_relay_refusals_unrecorded_total')).toBe(cycles - opensPerMinute - refusalsPerMinute);

    // The other terminal's transactions all went through, one session each.
    expect(outcomes.map((outcome) => outcome.outcome === 'completed' && outcome.result.category)).toEqual(Array(purchases).fill('approved'));
    expect(normal.sim.tillErrors).toEqual([]);
    expect((await rows(normalId)).map((row) => row.outcome)).toEqual(Array(purchases).fill('closed'));

    // Its agent reconnecting (a new driver, a new port) does not refill the hostile terminal's budget.
    const again = factory.forTerminal({ tenantId, agentId, terminalId: hostileId });
    const [targetHost, targetPort] = targetAddress.split(':') as [string, string];
    await expect(again.open({ protocol: 'tcp', host: targetHost, port: Number(targetPort), address: targetAddress })).rejects.toMatchObject({
      code: 'DENIED',
    });
    expect(dialled).toBe(opensPerMinute);

    // Nothing is lost from the audit: the refusals not recorded one by one become one summarising row.
    await factory.onApplicationShutdown();
    const written = await rows(hostileId);
    expect(written).toHaveLength(opensPerMinute + refusalsPerMinute + 1);
    expect(written.at(-1)).toEqual({
      outcome: 'denied',
      reason: expect.stringMatching(new RegExp(`^${cycles - opensPerMinute - refusalsPerMinute + 1} more relay opens refused and not recorded one by one`)),
    });
  });
});
