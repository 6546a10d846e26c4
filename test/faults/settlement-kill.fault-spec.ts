import { HOLD_PHASES, type HoldPhase, seededRandom, waitFor } from '@payorch/testing';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { JpaySimulator } from '@payorch/testing/jpay-sim';
import { SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

import { faultSeed, FINAL_WITHIN_MS, healingChecks, type Protocol, stackApi, startFaultStack, stopFaultStack } from './support/healing';
import { type HealthWatch, ProcessStack } from './support/stack';

/**
 * Self-healing of **settlements** with real processes (issue 15, `test/faults/`): the same ProcessStack as
 * process-kill.fault-spec.ts (gateway, connector, worker, agent as child processes; simulators here), its own
 * instance. A manual settlement (POST /v1/terminals/{id}/settlements) runs in the worker, which sends the
 * close-day (a SETTLEMENT operation) over the command bus to the connector and the agent.
 *
 * | fault               | point                                                        | asserted                                                               |
 * |---------------------|--------------------------------------------------------------|------------------------------------------------------------------------|
 * | worker kill -9      | seeded random point of the Joinproto close-day (below)       | settlement completed, the day closed exactly once, worker not-ready → ready |
 * | connector kill -9   | seeded random point of the Joinproto close-day               | settlement final, never closed twice, agent redials, terminal online   |
 * | gateway kill -9     | a payment in flight on each protocol                          | each executed once, as its terminal says, final within 30 s            |
 *
 * The points (the simulator holds the close-day there until the fault hit; libs/testing phase-hold.ts): `received`
 * (on the terminal's link, not read yet), `card` (at the bank), `answer` (the day closed, the answer not sent).
 * Replay a failure with FAULT_SEED=<seed in the test name>.
 *
 * Worker settings: SETTLEMENT_RETRY_BASE_MS / RECOVERY_INTERVAL_MS are short so a deferred settlement and the
 * recovery sweep come back within the test's budget; BullMQ's stalled-job detection (SHORT_LOCK: lock 10 s, checked
 * every 5 s) is the product's.
 */
const SEED = faultSeed();
const random = seededRandom(SEED);
const pickPoint = (): HoldPhase => HOLD_PHASES[Math.floor(random() * HOLD_PHASES.length)] as HoldPhase;
const WORKER_POINT = pickPoint();
const CONNECTOR_POINT = pickPoint();

describe(`faults: process kills during a settlement on a stack of real processes (FAULT_SEED=${SEED})`, () => {
  jest.setTimeout(90_000);
  const stack = new ProcessStack({ workerEnv: { SETTLEMENT_RETRY_BASE_MS: '500', SETTLEMENT_RETRY_MAX_MS: '2000', RECOVERY_INTERVAL_MS: '1000' } });
  let watch: HealthWatch;
  let auth: string;
  // Joinproto: 3 s "bank" delay on every command, the close-day included — the window for the kills.
  const joinproto = new JoinprotoTerminalSimulator({ processingDelayMs: 3_000 });
  // JPAY: kopecks 54 = keepalives (every 20 ms, 200 of them) then approved.
  const jpay = new JpaySimulator({ dialect: 'aqsi', keepaliveIntervalMs: 20 });
  // SSI: one status step every 400 ms (S01 … S07 → S00).
  const ssi = new SsiEcrSimulator({ port: 0, advance: { mode: 'timed', stepMs: 400 } });
  const terminals: Record<Protocol, string> = { JOINPROTO: '', JPAY: '', SSI_ECR: '' };
  /** Days the Joinproto terminal closed (its shift ended: close-day executed). */
  const dayCloses = jest.spyOn(joinproto, 'closeShiftOnTerminal');

  const { api, post, pay } = stackApi(stack, () => auth, terminals, 'sfault');
  const settle = async (protocol: Protocol) => {
    const res = await post(`/v1/terminals/${terminals[protocol]}/settlements`, {});
    if (res.status !== 202) throw new Error(`settlement refused: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id;
  };
  /** The settlement straight from PostgreSQL (works while the gateway is down). */
  const settlementOf = (id: string) => stack.owner.settlement.findUniqueOrThrow({ where: { id }, select: { status: true, operationId: true, error: true } });
  const online = (protocols: Protocol[]) =>
    waitFor(
      async () => (await Promise.all(protocols.map(async (p) => (await api('GET', `/v1/terminals/${terminals[p]}`)).body.status))).every((s) => s === 'online'),
      {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: `${protocols.join(', ')} ONLINE`,
        ignoreErrors: true,
      },
    );

  const { expectHealed, killAndRestart, stateOf } = healingChecks(stack, { joinproto, jpay, ssi }, () => watch);

  /** Starts a settlement of the Joinproto terminal and returns once the terminal holds its close-day at `point`. */
  async function settlementWithCloseDayAt(point: HoldPhase): Promise<{ settlementId: string; closeDayId: string }> {
    joinproto.hold.at(point);
    const settlementId = await settle('JOINPROTO');
    await waitFor(() => joinproto.hold.reached(point), {
      timeoutMs: 15_000,
      intervalMs: 20,
      what: `close-day held on the terminal at ${point}`,
      ignoreErrors: true,
    });
    const closeDayId = (await settlementOf(settlementId)).operationId ?? '';
    expect(closeDayId).not.toBe('');
    return { settlementId, closeDayId };
  }

  /** The settlement reaches a final status; returns it (lower case, as the API spells it). */
  async function settlementFinal(settlementId: string, timeoutMs: number): Promise<string> {
    let status = '';
    await waitFor(
      async () => {
        status = (await settlementOf(settlementId)).status.toLowerCase();
        return status === 'completed' || status === 'failed';
      },
      { timeoutMs, intervalMs: 200, what: 'settlement final', ignoreErrors: true },
    ).catch(async (error: Error) => {
      const settlement = await settlementOf(settlementId);
      const closeDay = settlement.operationId
        ? await stack.owner.terminalOperation.findUnique({ where: { id: settlement.operationId }, select: { state: true, stateReason: true } })
        : null;
      throw new Error(`${error.message}; settlement: ${JSON.stringify(settlement)}; close-day: ${JSON.stringify(closeDay)}\n${stack.logs()}`);
    });
    return status;
  }

  beforeAll(async () => {
    watch = await startFaultStack({
      stack,
      sims: { joinproto, jpay, ssi },
      terminals,
      setAuth: (value) => (auth = value),
      post,
      online: () => online(Object.keys(terminals) as Protocol[]),
    });
  }, 90_000);

  afterAll(() => stopFaultStack(stack, { joinproto, jpay, ssi }, watch));

  beforeEach(() => online(Object.keys(terminals) as Protocol[]));
  afterEach(() => joinproto.hold.release());

  it(`worker kill -9 with the close-day at ${WORKER_POINT} (FAULT_SEED=${SEED}): the restarted worker completes the settlement, the day closed once`, async () => {
    const closesBefore = dayCloses.mock.calls.length;
    const { settlementId, closeDayId } = await settlementWithCloseDayAt(WORKER_POINT);
    // The kill lands before the terminal closed its day, unless it holds the answer of a closed day.
    expect(dayCloses.mock.calls.length - closesBefore).toBe(WORKER_POINT === 'answer' ? 1 : 0);
    // The terminal goes on while the worker is down (its link is the connector's, untouched).
    const faultEndedAt = await killAndRestart('worker', async () => joinproto.hold.release());
    // The connector finishes the close-day without the worker: the operation is final within 30 s.
    await expectHealed(faultEndedAt, []);
    expect(await stateOf(closeDayId)).toBe('approved');
    // BullMQ hands the dead worker's job to the new one once its lock (10 s, SHORT_LOCK) expired and a stalled check saw it.
    expect(await settlementFinal(settlementId, FINAL_WITHIN_MS + 5_000)).toBe('completed');
    expect(Date.now() - faultEndedAt).toBeLessThanOrEqual(FINAL_WITHIN_MS);
    expect(dayCloses.mock.calls.length - closesBefore).toBe(1);
    expect(await stateOf(closeDayId)).toBe('approved');
    const settlement = await api('GET', `/v1/settlements/${settlementId}`);
    expect(settlement.body).toMatchObject({ status: 'completed', operationId: closeDayId });
    expect(await stack.nonFinal()).toEqual([]);
  }, 90_000);

  it(`connector kill -9 with the close-day at ${CONNECTOR_POINT} (FAULT_SEED=${SEED}): the settlement ends final, the day never closed twice, the agent is back`, async () => {
    const closesBefore = dayCloses.mock.calls.length;
    const dialsBefore = stack.proxy.accepted;
    const { settlementId, closeDayId } = await settlementWithCloseDayAt(CONNECTOR_POINT);
    const faultEndedAt = await killAndRestart('connector', async () => {
      // The link to the terminal drops with the tunnel: the held close-day is lost unread, canceled, or its answer lost.
      await waitFor(() => !joinproto.hold.reached(CONNECTOR_POINT), {
        timeoutMs: 10_000,
        intervalMs: 20,
        what: "the terminal's link dropped",
        ignoreErrors: true,
      });
      joinproto.hold.release();
    });
    // The worker follows the close-day's row, not the dead connector's reply (executeAndFollow): the settlement
    // is final seconds after the operation is recovered, not after the bus's 300 s deadline.
    const status = await settlementFinal(settlementId, FINAL_WITHIN_MS + 5_000);
    expect(Date.now() - faultEndedAt).toBeLessThanOrEqual(FINAL_WITHIN_MS);
    const closes = dayCloses.mock.calls.length - closesBefore;
    expect(closes).toBeLessThanOrEqual(1);
    // Completed means the terminal closed its day (once); failed means it did not.
    expect({ status, closes }).toEqual({ status, closes: status === 'completed' ? 1 : 0 });
    // The close-day on the wire when the connector died is recovered, never left open: one the terminal never read, or
    // was still running (the dropped link cancels it), did not close the day (canceled or failed: the settlement runs a
    // new one); one the terminal had finished is repeated by 95 (approved). Either way the settlement's close-day is approved.
    const closeDayState = await stateOf(closeDayId);
    expect({ closeDayState, closedByIt: CONNECTOR_POINT === 'answer' }).toEqual({
      closeDayState: CONNECTOR_POINT === 'answer' ? 'approved' : expect.stringMatching(/^(canceled|failed)$/),
      closedByIt: closeDayState === 'approved',
    });
    if (status === 'completed') expect(await stateOf((await settlementOf(settlementId)).operationId!)).toBe('approved');
    expect(stack.proxy.accepted).toBeGreaterThan(dialsBefore); // the agent redialled the new connector
    await online(['JOINPROTO']);
    await expectHealed(faultEndedAt, []);
    // Nothing closes the day again later (no retry re-sends a close-day the terminal already executed).
    expect(dayCloses.mock.calls.length - closesBefore).toBe(closes);
  });

  it('gateway kill -9 with a payment in flight on each protocol: each executed once, as its terminal says, final within 30 s', async () => {
    const amounts: Record<Protocol, number> = { JOINPROTO: 40_000, JPAY: 40_054, SSI_ECR: 40_500 };
    const ids: Record<Protocol, string> = {
      JOINPROTO: await pay('JOINPROTO', amounts.JOINPROTO),
      JPAY: await pay('JPAY', amounts.JPAY),
      SSI_ECR: await pay('SSI_ECR', amounts.SSI_ECR),
    };
    await waitFor(async () => (await Promise.all(Object.values(ids).map(stateOf))).every((s) => ['sent', 'in_progress'].includes(s)), {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: 'every payment running on its terminal',
      ignoreErrors: true,
    });
    const faultEndedAt = await killAndRestart('gateway');
    await expectHealed(
      faultEndedAt,
      (Object.keys(ids) as Protocol[]).map((protocol) => ({ id: ids[protocol], protocol, amount: amounts[protocol] })),
    );
    for (const id of Object.values(ids)) expect(await stateOf(id)).toBe('approved');
  });
});
