import { waitFor } from '@payorch/testing';
import type { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { DEFAULT_ADMIN_PASSWORD, type JpaySimulator } from '@payorch/testing/jpay-sim';
import type { SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';

import { type AppName, HealthWatch, type ProcessStack } from './stack';

/** Issue 15: from the end of a fault to every operation final. */
export const FINAL_WITHIN_MS = 30_000;
export const FINAL = ['approved', 'declined', 'canceled', 'failed'];
export type Protocol = 'JOINPROTO' | 'JPAY' | 'SSI_ECR';

/** An operation a fault test checks: `executions` on its terminal, 1 unless the fault kept it from the terminal (0). */
export interface CheckedOperation {
  id: string;
  protocol: Protocol;
  amount: number;
  executions?: 0 | 1;
}

/**
 * The seed of a fault test's random points: FAULT_SEED from the environment (to replay a failure), else a new
 * one. Tests print it in their names.
 */
export function faultSeed(): number {
  const given = Number(process.env.FAULT_SEED);
  return Number.isInteger(given) && given > 0 ? given : 1 + Math.floor(Math.random() * 2_147_483_646);
}

export interface Simulators {
  joinproto: JoinprotoTerminalSimulator;
  jpay: JpaySimulator;
  ssi: SsiEcrSimulator;
}

/**
 * The checks every real-process fault test makes (test/faults/*.fault-spec.ts): the terminals' journals,
 * "healed" (every operation final within 30 s of the fault's end, each executed once, in its terminal's state)
 * and a kill -9 + restart whose readiness went not-ready and back. `watch` is read when a check runs (the
 * HealthWatch starts after the stack).
 */
export function healingChecks(stack: ProcessStack, sims: Simulators, watch: () => HealthWatch) {
  /** Journals: executions of `amount` on each simulator, with the terminal's verdict. */
  const executions: Record<Protocol, (amount: number) => string[]> = {
    JOINPROTO: (amount) =>
      sims.joinproto.journal.filter((e) => e.amount === amount).map((e) => (e.approved ? 'approved' : e.responseCode === 'XX' ? 'not executed' : 'declined')),
    JPAY: (amount) => sims.jpay.ledger.log.filter((e) => e.amount === amount).map((e) => e.status),
    SSI_ECR: (amount) => sims.ssi.persistent.batch.filter((e) => e.amount === amount).map(() => 'approved'),
  };

  /** The operation's state straight from PostgreSQL (works while the gateway is down). */
  const stateOf = async (id: string) =>
    ((await stack.owner.terminalOperation.findUniqueOrThrow({ where: { id }, select: { state: true } })).state as string).toLowerCase();

  /** Operations with their terminal, state and steps (kind, transition, data), for failure messages. */
  const history = (ids: string[]) =>
    Promise.all(
      ids.map(async (id) => ({
        ...(await stack.owner.terminalOperation.findUnique({ where: { id }, select: { id: true, terminalId: true, state: true, stateReason: true } })),
        events: (
          await stack.owner.operationEvent.findMany({
            where: { operationId: id },
            orderBy: { createdAt: 'asc' },
            select: { kind: true, toState: true, data: true },
          })
        ).map((e) => [e.kind, e.toState, e.data]),
      })),
    );

  /**
   * After the fault ended: every operation of the database final within 30 s, each of `ops` in the state
   * its terminal's journal shows, executed there exactly once (or not at all, `executions: 0`: then failed or
   * canceled). Returns ms from the fault's end to all final.
   */
  async function expectHealed(faultEndedAt: number, ops: CheckedOperation[]): Promise<number> {
    await waitFor(async () => (await stack.nonFinal()).length === 0, {
      timeoutMs: FINAL_WITHIN_MS + 5_000,
      intervalMs: 100,
      what: 'every operation final',
      ignoreErrors: true,
    }).catch(async (error: Error) => {
      throw new Error(`${error.message}; non-final: ${JSON.stringify(await history((await stack.nonFinal()).map((o) => o.id)))}\n${stack.logs()}`);
    });
    const healedMs = Date.now() - faultEndedAt;
    expect(healedMs).toBeLessThanOrEqual(FINAL_WITHIN_MS);
    for (const op of ops) {
      const journal = executions[op.protocol](op.amount);
      expect({ protocol: op.protocol, executions: journal.length }).toEqual({ protocol: op.protocol, executions: op.executions ?? 1 });
      const truth = journal.length === 0 || journal[0] === 'not executed' ? ['canceled', 'failed'] : [journal[0]];
      const state = await stateOf(op.id);
      expect({ protocol: op.protocol, state, truth, ok: truth.includes(state) }).toEqual({ protocol: op.protocol, state, truth, ok: true });
      expect(FINAL).toContain(state);
    }
    return healedMs;
  }

  /** /health/ready of `app` answered something other than 200 after `since`, and 200 again later. */
  async function expectWentNotReadyAndBack(app: AppName, since: number): Promise<void> {
    const back = await waitFor(
      () => {
        const samples = watch().samples[app].filter((s) => s.at >= since);
        const down = samples.findIndex((s) => s.status !== 200);
        return down >= 0 && samples.slice(down).some((s) => s.status === 200);
      },
      { timeoutMs: 10_000, intervalMs: 100, what: `${app} ready again`, ignoreErrors: true },
    );
    expect(back).toBe(true);
  }

  /** /health/ready of `app` answered 200 at every sample from `since` until now (a fault it must not depend on). */
  async function expectStayedReady(app: AppName, since: number): Promise<void> {
    const now = Date.now();
    await waitFor(() => watch().since(app, now).length > 0, { timeoutMs: 10_000, intervalMs: 50, what: `${app} sampled`, ignoreErrors: true });
    expect(
      watch()
        .since(app, since)
        .filter((s) => s !== 200),
    ).toEqual([]);
  }

  /** kill -9 `app` (run `whileDown` while it is dead), start it again, and check its readiness went down and came back. Returns when the fault ended. */
  async function killAndRestart(app: AppName, whileDown?: () => Promise<void>): Promise<number> {
    const faultAt = Date.now();
    await stack[app].kill('SIGKILL');
    await whileDown?.();
    await stack[app].start();
    const faultEndedAt = Date.now();
    await expectWentNotReadyAndBack(app, faultAt);
    return faultEndedAt;
  }

  return { executions, expectHealed, expectStayedReady, expectWentNotReadyAndBack, killAndRestart, stateOf };
}

/**
 * The public API of a fault stack's gateway, as the fault specs drive it: `auth()` is read on each call (the
 * tenant's key is created in beforeAll), every POST carries a fresh Idempotency-Key unless one is given (a
 * retry passes the same), and `terminals` is filled by the spec once it created them.
 */
export function stackApi(stack: ProcessStack, auth: () => string, terminals: Record<Protocol, string>, keyPrefix: string) {
  const api = async (method: string, path: string, body?: object, key?: string) => {
    const res = await fetch(`${stack.url('gateway')}${path}`, {
      method,
      headers: { Authorization: auth(), 'Content-Type': 'application/json', ...(key ? { 'Idempotency-Key': key } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> & { id: string } };
  };
  let keys = 0;
  const newKey = () => `${keyPrefix}-${process.pid}-${Date.now()}-${keys++}`;
  const post = (path: string, body: object, key = newKey()) => api('POST', path, body, key);
  const pay = async (protocol: Protocol, amount: number, key = newKey()) => {
    const res = await post(`/v1/terminals/${terminals[protocol]}/operations`, { type: 'purchase', amount, currency: 'RUB' }, key);
    if (res.status !== 201) throw new Error(`payment refused: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id;
  };
  const allOnline = () =>
    waitFor(
      async () =>
        (await Promise.all(Object.values(terminals).map(async (id) => (await api('GET', `/v1/terminals/${id}`)).body.status))).every((s) => s === 'online'),
      { timeoutMs: 30_000, intervalMs: 100, what: 'every terminal ONLINE', ignoreErrors: true },
    );
  return { api, newKey, post, pay, allOnline };
}

/**
 * The real-process fault specs' start: the stack, its tenant's key (handed to `setAuth`), one store, one agent and
 * one terminal per protocol on its simulator (JPAY with its admin password; ids written into `terminals`), the
 * agent enrolled (its CLI a child process), every terminal online (`online`), then a HealthWatch of the three
 * apps, returned. A failure carries the stack's logs.
 */
export async function startFaultStack(options: {
  stack: ProcessStack;
  sims: Simulators;
  terminals: Record<Protocol, string>;
  setAuth: (auth: string) => void;
  post: (path: string, body: object) => Promise<{ status: number; body: Record<string, unknown> & { id: string } }>;
  online: () => Promise<unknown>;
}): Promise<HealthWatch> {
  const { stack, sims, terminals, post } = options;
  try {
    await stack.start();
    options.setAuth(`Bearer ${(await stack.tenant()).apiKey}`);
    const store = await post('/v1/stores', { name: 'Shop', timeZone: 'Europe/Moscow' });
    const agent = await post('/v1/agents', { name: 'Till 1', storeId: store.body.id });
    const ports: Record<Protocol, number> = {
      JOINPROTO: (await sims.joinproto.listen(0)).port,
      JPAY: await sims.jpay.listen(0),
      SSI_ECR: (await sims.ssi.start()).port,
    };
    for (const protocol of Object.keys(terminals) as Protocol[]) {
      const created = await post('/v1/terminals', {
        name: protocol,
        storeId: store.body.id,
        agentId: (agent.body.agent as { id: string }).id,
        protocol: protocol.toLowerCase(), // API casing; the labels here are the protocols' names
        connection: { kind: 'tcp', host: '127.0.0.1', port: ports[protocol] },
        ...(protocol === 'JPAY' ? { credentials: { adminPassword: DEFAULT_ADMIN_PASSWORD } } : {}),
      });
      if (created.status !== 201) throw new Error(`terminal setup failed: ${JSON.stringify(created.body)}`);
      terminals[protocol] = created.body.id;
    }
    await stack.enrollAgent(agent.body.enrollmentToken as string);
    await options.online();
    return new HealthWatch({ gateway: stack.readyUrl('gateway'), connector: stack.readyUrl('connector'), worker: stack.readyUrl('worker') }).start();
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${stack.logs()}`, { cause: error });
  }
}

/** The real-process fault specs' end: the watch, the stack's processes, the simulators. */
export async function stopFaultStack(stack: ProcessStack, sims: Simulators, watch: HealthWatch | undefined): Promise<void> {
  watch?.stop();
  await stack.stop();
  await Promise.allSettled([sims.joinproto.close(), sims.jpay.close(), sims.ssi.stop()]);
}
