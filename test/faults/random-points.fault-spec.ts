import { HOLD_PHASES, type HoldPhase, type PhaseHold, seededRandom, waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { JpaySimulator } from '@payorch/testing/jpay-sim';
import { SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

import { faultSeed, healingChecks, type Protocol, stackApi, startFaultStack, stopFaultStack } from './support/healing';
import { type AppName, type HealthWatch, ProcessStack } from './support/stack';

/**
 * Issue 15's fault matrix at **random points** of an operation, with real processes (test/faults/support/stack.ts):
 * every process kill (gateway, connector, agent, worker) and link fault (cut, stall) × every protocol. Per
 * fault kind one kill (or cut, or stall) hits three payments at once, one per protocol, each held by its
 * terminal simulator at a point drawn from a seeded generator (libs/testing phase-hold.ts):
 * - `received`: the command reached the terminal, which has not read it yet;
 * - `card`: the terminal waits for the card;
 * - `answer`: the terminal approved and logged it, the answer has not left.
 * The test waits for the terminal to report that it holds the payment there (a condition, not a delay),
 * injects the fault and lets the terminals go on once it hit (a process dead, the links it carried dropped: a
 * command on a dropped link is lost unread, canceled, or its answer lost, as on a real link). Replay a failure
 * with FAULT_SEED=<seed from the test name>.
 *
 * Each case asserts: every operation ends in its terminal's true outcome, executed once on the terminal (none,
 * when the fault dropped the link before the terminal read it, or — JPAY — before the card), nothing non-final
 * 30 s after the fault's end, and the killed app's readiness went not-ready and back (agent and link faults:
 * the connector stayed ready). Plus: a gateway kill -9 **between the insert and the dispatch** (its XADD held
 * in a proxy in front of its Redis): the recovery sweep fails the operation as never sent, the terminal got
 * nothing, and the same Idempotency-Key answers the same operation.
 */
const SEED = faultSeed();
const random = seededRandom(SEED);
const PROTOCOLS: Protocol[] = ['JOINPROTO', 'JPAY', 'SSI_ECR'];
const NAMES: Record<Protocol, string> = { JOINPROTO: 'Joinproto', JPAY: 'JPAY', SSI_ECR: 'SSI' };
type FaultKind = 'gateway kill -9' | 'connector kill -9' | 'agent kill -9' | 'worker kill -9' | 'link cut' | 'link stall';
const KILLED: Partial<Record<FaultKind, AppName>> = { 'gateway kill -9': 'gateway', 'connector kill -9': 'connector', 'worker kill -9': 'worker' };
/** Faults that take the agent's links to the terminals down with them. */
const DROPS_LINKS: ReadonlySet<FaultKind> = new Set(['connector kill -9', 'agent kill -9', 'link cut']);
const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;

const CASES = (['gateway kill -9', 'connector kill -9', 'agent kill -9', 'worker kill -9', 'link cut', 'link stall'] as FaultKind[]).map((kind, i) => {
  const phases = Object.fromEntries(PROTOCOLS.map((p) => [p, pick(HOLD_PHASES)])) as Record<Protocol, HoldPhase>;
  const at = PROTOCOLS.map((p) => `${NAMES[p]} ${phases[p]}`).join(', ');
  // Amounts ending in 00: approved on every simulator; one thousand apart per case, so journals tell them apart.
  return { kind, phases, base: 100_000 + i * 1_000, title: `${kind} at ${at} (FAULT_SEED=${SEED})` };
});
const UNSENT_PROTOCOL = pick(PROTOCOLS);

/**
 * Executions the terminal's journal must show: none when the fault dropped the link while the command sat
 * unread (`received`), or while a JPAY purchase waited for the card (its first card-path message then finds the
 * link gone and nothing is logged); else one (a Joinproto command canceled by the drop is journaled `XX`).
 */
const expectedExecutions = (kind: FaultKind, protocol: Protocol, phase: HoldPhase): 0 | 1 =>
  DROPS_LINKS.has(kind) && (phase === 'received' || (phase === 'card' && protocol === 'JPAY')) ? 0 : 1;

/**
 * An SSI request lost unread with its link: the terminal is idle and its last result is still the baseline read right
 * before the request was sent, so recovery proves it never executed (spec 5.1; docs/protocols/ssi-ecr.md, "never
 * executed") and fails it as `NOT_EXECUTED` — no human needed.
 */
const lostUnread = (kind: FaultKind, protocol: Protocol, phase: HoldPhase): boolean => protocol === 'SSI_ECR' && phase === 'received' && DROPS_LINKS.has(kind);

/** Holds that end when the command's link drops: every Joinproto and JPAY phase, SSI `received` (an SSI terminal runs on alone). */
const linkBound = (protocol: Protocol, phase: HoldPhase): boolean => protocol !== 'SSI_ECR' || phase === 'received';

describe(`faults at seeded random points of an operation, every fault kind × every protocol (FAULT_SEED=${SEED})`, () => {
  jest.setTimeout(90_000);
  const stack = new ProcessStack({
    // A short never-sent horizon (the sweep every second) for the insert/dispatch case; queued operations are
    // kept fresh well within it.
    workerEnv: { RECOVERY_INTERVAL_MS: '1000', RECOVERY_PENDING_AFTER_MS: '5000' },
    connectorEnv: { PENDING_HOLD_INTERVAL_MS: '1000' },
    proxyGatewayRedis: true,
  });
  let watch: HealthWatch;
  let auth: string;
  const joinproto = new JoinprotoTerminalSimulator();
  const jpay = new JpaySimulator({ dialect: 'aqsi', keepaliveIntervalMs: 20 });
  const ssi = new SsiEcrSimulator({ port: 0, advance: { mode: 'timed', stepMs: 200 } });
  const holds: Record<Protocol, PhaseHold> = { JOINPROTO: joinproto.hold, JPAY: jpay.hold, SSI_ECR: ssi.hold };
  const terminals: Record<Protocol, string> = { JOINPROTO: '', JPAY: '', SSI_ECR: '' };

  const { newKey, post, pay, allOnline } = stackApi(stack, () => auth, terminals, 'rfault');

  const { executions, expectHealed, expectStayedReady, killAndRestart, stateOf } = healingChecks(stack, { joinproto, jpay, ssi }, () => watch);

  /** The operations and their terminals' holds, for failure messages. */
  const describeOps = async (ops: { id: string; protocol: Protocol; phase: HoldPhase }[]) =>
    JSON.stringify(
      await Promise.all(
        ops.map(async (op) => ({ protocol: op.protocol, phase: op.phase, held: holds[op.protocol].reached(op.phase), state: await stateOf(op.id) })),
      ),
    );

  beforeAll(async () => {
    watch = await startFaultStack({ stack, sims: { joinproto, jpay, ssi }, terminals, setAuth: (value) => (auth = value), post, online: allOnline });
  }, 90_000);

  afterAll(() => stopFaultStack(stack, { joinproto, jpay, ssi }, watch));

  beforeEach(async () => {
    await allOnline();
    await waitFor(async () => (await stack.nonFinal()).length === 0, {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: 'nothing left from the previous case',
      ignoreErrors: true,
    });
  });

  afterEach(() => {
    for (const hold of Object.values(holds)) hold.release();
    stack.redisProxy?.holdFirst(undefined);
  });

  it.each(CASES)('$title', async ({ kind, phases, base }) => {
    const ops = PROTOCOLS.map((protocol, i) => ({ id: '', protocol, amount: base + i * 100, phase: phases[protocol] }));
    for (const op of ops) holds[op.protocol].at(op.phase);
    for (const op of ops) op.id = await pay(op.protocol, op.amount);
    await waitFor(() => ops.every((op) => holds[op.protocol].reached(op.phase)), {
      timeoutMs: 20_000,
      intervalMs: 20,
      what: 'every payment held at its point',
      ignoreErrors: true,
    }).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${await describeOps(ops)}\n${stack.logs()}`);
    });
    const releaseAll = () => ops.forEach((op) => holds[op.protocol].release());
    // A fault that drops the agent's links to the terminals ends the holds bound to a link by itself (the command
    // lost or canceled with it): wait for that before the terminals go on.
    const linksDropped = () =>
      waitFor(() => ops.every((op) => !linkBound(op.protocol, op.phase) || !holds[op.protocol].reached(op.phase)), {
        timeoutMs: 10_000,
        intervalMs: 20,
        what: "the terminals' links dropped",
        ignoreErrors: true,
      });

    const faultAt = Date.now();
    let faultEndedAt: number;
    const app = KILLED[kind];
    if (app) {
      // The terminals go on while the process is down; its readiness went down and up again (checked there).
      faultEndedAt = await killAndRestart(app, async () => {
        if (DROPS_LINKS.has(kind)) await linksDropped();
        releaseAll();
      });
    } else if (kind === 'agent kill -9') {
      await stack.agent?.kill('SIGKILL');
      await linksDropped();
      releaseAll();
      await stack.agent?.start();
      faultEndedAt = Date.now();
    } else if (kind === 'link cut') {
      stack.proxy.cut();
      faultEndedAt = Date.now();
      await linksDropped();
      releaseAll();
    } else {
      const askedBefore = jpay.asked.length;
      stack.proxy.stall();
      try {
        releaseAll();
        // Each terminal does what it can without the link: Joinproto and SSI finish; a JPAY purchase finishes, or
        // waits for the answer to its first card-path message, which is held in the stalled link.
        await waitFor(
          () =>
            executions.JOINPROTO(ops[0].amount).length === 1 &&
            (executions.JPAY(ops[1].amount).length === 1 || jpay.asked.length > askedBefore) &&
            executions.SSI_ECR(ops[2].amount).length === 1 &&
            ssi.status === 'S00',
          { timeoutMs: 10_000, intervalMs: 20, what: 'every terminal as far as it goes without the link', ignoreErrors: true },
        ).catch(async (error: Error) => {
          throw new Error(`${error.message}: ${await describeOps(ops)}`);
        });
      } finally {
        stack.proxy.resume();
      }
      faultEndedAt = Date.now();
    }

    await expectHealed(
      faultEndedAt,
      ops.map((op) => ({ ...op, executions: expectedExecutions(kind, op.protocol, op.phase) })),
    );
    for (const op of ops.filter((o) => lostUnread(kind, o.protocol, o.phase))) {
      const row = await stack.owner.terminalOperation.findUniqueOrThrow({ where: { id: op.id }, select: { state: true, stateReason: true } });
      expect(row).toMatchObject({ state: 'FAILED', stateReason: expect.stringContaining('NOT_EXECUTED') });
    }
    // A process kill is checked by killAndRestart; nothing about an agent or its link is a readiness dependency.
    if (!app) await expectStayedReady('connector', faultAt);
  });

  it(`gateway kill -9 between the insert and the dispatch of a ${NAMES[UNSENT_PROTOCOL]} payment (FAULT_SEED=${SEED}): failed as never sent, nothing reached the terminal, the same Idempotency-Key answers it`, async () => {
    const redisProxy = stack.redisProxy!;
    const amount = 190_000;
    const key = newKey();
    const terminalCommands = () => ({
      joinproto: joinproto.journal.length,
      jpay: jpay.received.filter((r) => r.command === 'transaction').length,
      ssi: ssi.received.filter((m) => m === 'Purchase').length,
    });
    const before = terminalCommands();
    const heldBefore = redisProxy.held;
    // The dispatch is an XADD of `operation.execute` on the gateway's command connection: held in the proxy, it never
    // reaches Redis; the operation row was committed before it.
    redisProxy.holdFirst((chunk) => {
      const text = chunk.toString('latin1');
      return /xadd/i.test(text) && text.includes('operation.execute');
    });
    const id = await pay(UNSENT_PROTOCOL, amount, key);
    await waitFor(() => redisProxy.held > heldBefore, { timeoutMs: 10_000, intervalMs: 10, what: 'the dispatch held before Redis', ignoreErrors: true });
    expect(await stateOf(id)).toBe('pending');

    const faultEndedAt = await killAndRestart('gateway');
    await expectHealed(faultEndedAt, [{ id, protocol: UNSENT_PROTOCOL, amount, executions: 0 }]);
    const row = await stack.owner.terminalOperation.findUniqueOrThrow({ where: { id }, select: { state: true, stateReason: true } });
    expect(row).toMatchObject({ state: 'FAILED', stateReason: expect.stringContaining('never sent') });
    // Never claimed by an executor, and no terminal saw a command.
    expect(await stack.owner.operationEvent.count({ where: { operationId: id, kind: 'transition', toState: 'SENT' } })).toBe(0);
    expect(terminalCommands()).toEqual(before);
    const again = await post(`/v1/terminals/${terminals[UNSENT_PROTOCOL]}/operations`, { type: 'purchase', amount, currency: 'RUB' }, key);
    expect([again.status, again.body.id, again.body.state]).toEqual([201, id, 'failed']);
    expect(terminalCommands()).toEqual(before);
  });
});
