/**
 * Faults benchmark (issue 15): how fast the system heals. A stack of real processes (gateway, device
 * connector, settlement worker, agent CLI behind a TCP proxy; test/faults/support/stack.ts) on its own
 * Redis (OwnedRedis) and PostgreSQL (OwnedPostgres), so both can be restarted. Per fault kind, RUNS times:
 * an SSI payment is left in the terminal's card wait (the terminal finishes it by itself), the fault is
 * injected, and from the fault's end we measure the time to **all operations final** and to the **first
 * new operation approved** (a Joinproto payment retried every 200 ms until one is approved). Baseline,
 * measured in the same run: an approved Joinproto payment with no fault. Prints p50 / max and the ratio
 * of the p50s to the baseline p50. One more row, `link cut, SSI request unread`: the SSI payment is instead held on
 * the terminal's link before the terminal read it (libs/testing phase-hold.ts `received`), and the cut loses it:
 * recovery proves it never executed (docs/protocols/ssi-ecr.md) and fails it `NOT_EXECUTED`.
 * Settlement faults (a second table): a manual settlement of the Joinproto terminal whose close-day the terminal
 * holds at the bank (libs/testing phase-hold.ts) when the worker or the connector is killed; the terminal goes on
 * once the process is dead (and, for the connector, the link to the terminal dropped). From the restart we measure
 * the time to the **settlement final**, to all operations final and to the first new payment approved; baseline: a
 * settlement with no fault.
 * Run: node scripts/run-ts.mjs bench/faults/faults.bench.ts   (about 4–5 min; RUNS=3, SKIP_POSTGRES=1, FAULTS=cut,stall,settlement to change)
 * BENCH_QUICK=1 (CI): one run of the connector kill and the link cut, no owned PostgreSQL, no settlement rows (a
 * killed worker's settlement job waits for SHORT_LOCK's 10 s lock and a stalled check; a close-day canceled by a
 * connector kill is redone after 2 s).
 */
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';
import { SsiEcrSimulator } from '@payorch/testing/ssi-ecr-sim';
import { OwnedPostgres, OwnedRedis, waitFor } from '@payorch/testing';

import { ProcessStack } from '../../test/faults/support/stack';
import { QUICK, reportRow } from '../support/report';

const RUNS = Math.max(1, Math.min(10, Number(process.env.RUNS ?? (QUICK ? 1 : 3))));
const SKIP_POSTGRES = Boolean(process.env.SKIP_POSTGRES) || QUICK;
const FAULTS = process.env.FAULTS ?? (QUICK ? 'connector kill,cut' : undefined);
/** Bound of one measurement (fault end → all final / first approved). */
const BOUND_MS = 60_000;
/** Bound of fault end → settlement final: a killed worker's job comes back after its lock (10 s) and a stalled check. */
const SETTLEMENT_BOUND_MS = 60_000;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

type FaultKind =
  'connector kill -9' | 'agent kill -9' | 'link cut' | 'link cut, SSI request unread' | 'link stall' | 'Redis restart (empty)' | 'PostgreSQL stop/start';
/** The fault whose SSI payment is lost on the link before the terminal read it (the others: in the card wait). */
const LOST_UNREAD: FaultKind = 'link cut, SSI request unread';
type SettlementFaultKind = 'settlement: worker kill -9' | 'settlement: connector kill -9';

async function main(): Promise<void> {
  const redis = await new OwnedRedis().start();
  const pg = SKIP_POSTGRES ? undefined : await new OwnedPostgres().start();
  const stack = new ProcessStack({ redisUrl: redis.url, ...(pg ? { database: { adminUrl: pg.adminUrl, appUrl: pg.appUrl } } : {}) });
  const joinproto = new JoinprotoTerminalSimulator();
  const ssi = new SsiEcrSimulator({ port: 0, advance: { mode: 'timed', stepMs: 300 } });
  try {
    await stack.start();
    const { apiKey } = await stack.tenant();
    const headers = { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' };
    let n = 0;
    const call = async (method: string, path: string, body?: object) => {
      const res = await fetch(`${stack.url('gateway')}${path}`, {
        method,
        headers: { ...headers, 'Idempotency-Key': `bench-${process.pid}-${n++}` },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(15_000),
      });
      return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
    };
    const storeId = (await call('POST', '/v1/stores', { name: 'Bench', timeZone: 'UTC' })).body.id as string;
    const agent = (await call('POST', '/v1/agents', { name: 'Till', storeId })).body as { agent: { id: string }; enrollmentToken: string };
    const ports = { JOINPROTO: (await joinproto.listen(0)).port, SSI_ECR: (await ssi.start()).port };
    const terminals: Record<keyof typeof ports, string> = { JOINPROTO: '', SSI_ECR: '' };
    for (const protocol of ['JOINPROTO', 'SSI_ECR'] as const) {
      const res = await call('POST', '/v1/terminals', {
        name: protocol,
        storeId,
        agentId: agent.agent.id,
        protocol: protocol.toLowerCase(), // API casing
        connection: { kind: 'tcp', host: '127.0.0.1', port: ports[protocol] },
      });
      if (res.status !== 201) throw new Error(`terminal: ${res.status} ${JSON.stringify(res.body)}`);
      terminals[protocol] = res.body.id as string;
    }
    await stack.enrollAgent(agent.enrollmentToken);
    const online = () =>
      waitFor(
        async () =>
          (await Promise.all(Object.values(terminals).map(async (id) => (await call('GET', `/v1/terminals/${id}`)).body.status))).every((s) => s === 'online'),
        { timeoutMs: BOUND_MS, intervalMs: 100, what: 'terminals ONLINE', ignoreErrors: true },
      );
    await online();

    let lastAttempt = '';
    /** One Joinproto payment, waited for; its final state (or the refusal). */
    const payOnce = async (): Promise<string> => {
      const res = await call('POST', `/v1/terminals/${terminals.JOINPROTO}/operations?wait=10000`, { type: 'purchase', amount: 1_500, currency: 'RUB' });
      lastAttempt = res.status === 201 ? `${String(res.body.state)} (${String(res.body.stateReason)})` : `HTTP ${res.status} ${JSON.stringify(res.body)}`;
      return res.status === 201 ? String(res.body.state) : `HTTP ${res.status}`;
    };
    /** ms from `since` until a new payment is approved (retried every 200 ms, bounded). */
    const firstApproved = async (since: number): Promise<number> => {
      await waitFor(async () => (await payOnce().catch(() => 'error')) === 'approved', {
        timeoutMs: BOUND_MS,
        intervalMs: 200,
        what: 'a new payment approved',
        ignoreErrors: true,
      }).catch((error: Error) => {
        throw new Error(`${error.message}; last attempt: ${lastAttempt}`);
      });
      return Date.now() - since;
    };
    const allFinal = async (since: number): Promise<number> => {
      await waitFor(async () => (await stack.nonFinal()).length === 0, {
        timeoutMs: BOUND_MS,
        intervalMs: 100,
        what: 'every operation final',
        ignoreErrors: true,
      });
      return Date.now() - since;
    };
    const inCardWait = async () => {
      const res = await call('POST', `/v1/terminals/${terminals.SSI_ECR}/operations`, { type: 'purchase', amount: 2_500, currency: 'RUB' });
      if (res.status !== 201) throw new Error(`payment: ${res.status} ${JSON.stringify(res.body)}`);
      await waitFor(() => ['S02', 'S03'].includes(ssi.status), {
        timeoutMs: 10_000,
        intervalMs: 20,
        what: 'SSI terminal waiting for the card',
        ignoreErrors: true,
      }).catch(async (error: Error) => {
        const op = (await call('GET', `/v1/operations/${String(res.body.id)}`)).body;
        throw new Error(`${error.message}; the payment is ${String(op.state)} (${String(op.stateReason)})`);
      });
    };

    /** The SSI payment sent, and held on the terminal's link before the terminal read it. */
    const heldUnread = async () => {
      ssi.hold.at('received');
      const res = await call('POST', `/v1/terminals/${terminals.SSI_ECR}/operations`, { type: 'purchase', amount: 2_600, currency: 'RUB' });
      if (res.status !== 201) throw new Error(`payment: ${res.status} ${JSON.stringify(res.body)}`);
      await waitFor(() => ssi.hold.reached('received'), { timeoutMs: 10_000, intervalMs: 20, what: 'SSI request held unread', ignoreErrors: true });
    };

    // Baseline: an approved payment, no fault.
    const baseline: number[] = [];
    await payOnce(); // warm-up
    for (let i = 0; i < Math.max(RUNS, 5); i++) {
      const t = Date.now();
      if ((await payOnce()) !== 'approved') throw new Error('baseline payment not approved');
      baseline.push(Date.now() - t);
    }

    /** Injects the fault; resolves at the fault's end. */
    const faults: Partial<Record<FaultKind, () => Promise<void>>> = {
      'connector kill -9': async () => {
        await stack.connector.kill('SIGKILL');
        await stack.connector.start();
      },
      'agent kill -9': async () => {
        await stack.agent?.kill('SIGKILL');
        await stack.agent?.start();
      },
      'link cut': async () => stack.proxy.cut(),
      [LOST_UNREAD]: async () => {
        stack.proxy.cut();
        // The cut ends the hold (the request is lost with the link); the terminal goes on with nothing to do.
        void waitFor(() => !ssi.hold.reached('received'), { timeoutMs: 10_000, intervalMs: 20, what: 'the SSI link dropped', ignoreErrors: true })
          .catch(() => undefined)
          .finally(() => ssi.hold.release());
      },
      'link stall': async () => {
        stack.proxy.stall();
        try {
          await waitFor(() => ssi.status === 'S00', { timeoutMs: 10_000, intervalMs: 20, what: 'SSI terminal finished during the stall', ignoreErrors: true });
        } finally {
          stack.proxy.resume();
        }
      },
      'Redis restart (empty)': () => redis.restart(),
      ...(pg
        ? {
            'PostgreSQL stop/start': async () => {
              await pg.stop();
              await pg.start();
            },
          }
        : {}),
    };

    const only = FAULTS?.split(',').map((f) => f.trim().toLowerCase());
    // Settlement rows only when no filter is given or a filter names them (`settlement…`): quick mode leaves them out.
    const selected = <T>(table: Partial<Record<string, T>>) =>
      Object.entries(table).filter(
        ([k]) => !only || only.some((f) => k.toLowerCase().includes(f) && (!k.startsWith('settlement') || f.startsWith('settlement'))),
      );
    const rows: { kind: string; final: number[]; approved: number[]; errors: string[] }[] = [];
    for (const [kind, inject] of selected(faults) as [string, () => Promise<void>][]) {
      const row = { kind, final: [] as number[], approved: [] as number[], errors: [] as string[] };
      rows.push(row);
      for (let run = 0; run < RUNS; run++) {
        try {
          await online();
          await waitFor(async () => (await stack.nonFinal()).length === 0, {
            timeoutMs: BOUND_MS,
            intervalMs: 100,
            what: 'nothing left from the previous run',
            ignoreErrors: true,
          });
          await (kind === LOST_UNREAD ? heldUnread() : inCardWait());
          await inject();
          const end = Date.now();
          const [final, approved] = await Promise.all([allFinal(end), firstApproved(end)]);
          row.final.push(final);
          row.approved.push(approved);
        } catch (error) {
          row.errors.push((error as Error).message);
        }
      }
      process.stderr.write(`${kind}: done${row.errors.length ? ` (${row.errors.length} failed: ${row.errors[0]})` : ''}\n`);
    }

    // Settlement faults: the close-day held at the bank when the fault hits (a condition, not a delay).
    const settle = async (): Promise<string> => {
      const res = await call('POST', `/v1/terminals/${terminals.JOINPROTO}/settlements`, {});
      if (res.status !== 202) throw new Error(`settlement: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.id as string;
    };
    const settlementFinal = async (id: string, since: number): Promise<number> => {
      let status = '';
      await waitFor(
        async () => {
          status = (await stack.owner.settlement.findUniqueOrThrow({ where: { id }, select: { status: true } })).status;
          return status === 'COMPLETED' || status === 'FAILED';
        },
        { timeoutMs: SETTLEMENT_BOUND_MS, intervalMs: 100, what: 'the settlement final', ignoreErrors: true },
      ).catch((error: Error) => {
        throw new Error(`${error.message}; it is ${status}`);
      });
      return Date.now() - since;
    };
    const settlementBaseline: number[] = [];
    const settlementFaults: Record<SettlementFaultKind, () => Promise<void>> = {
      'settlement: worker kill -9': async () => {
        await stack.worker.kill('SIGKILL');
        joinproto.hold.release();
        await stack.worker.start();
      },
      'settlement: connector kill -9': async () => {
        await stack.connector.kill('SIGKILL');
        // The link to the terminal drops with the tunnel; the close-day it held at the bank is canceled.
        await waitFor(() => !joinproto.hold.reached('card'), { timeoutMs: 10_000, intervalMs: 20, what: "the terminal's link dropped", ignoreErrors: true });
        joinproto.hold.release();
        await stack.connector.start();
      },
    };
    const settlementRows: { kind: string; settled: number[]; final: number[]; approved: number[]; errors: string[] }[] = [];
    const chosenSettlementFaults = selected(settlementFaults) as [string, () => Promise<void>][];
    if (chosenSettlementFaults.length > 0) {
      for (let i = 0; i < Math.max(RUNS, 3); i++) {
        await online();
        const t = Date.now();
        settlementBaseline.push(await settlementFinal(await settle(), t));
      }
    }
    for (const [kind, inject] of chosenSettlementFaults) {
      const row = { kind, settled: [] as number[], final: [] as number[], approved: [] as number[], errors: [] as string[] };
      settlementRows.push(row);
      for (let run = 0; run < RUNS; run++) {
        try {
          await online();
          await waitFor(async () => (await stack.nonFinal()).length === 0, {
            timeoutMs: BOUND_MS,
            intervalMs: 100,
            what: 'nothing left from the previous run',
            ignoreErrors: true,
          });
          joinproto.hold.at('card');
          const id = await settle();
          await waitFor(() => joinproto.hold.reached('card'), { timeoutMs: 15_000, intervalMs: 20, what: 'the close-day at the bank', ignoreErrors: true });
          await inject();
          const end = Date.now();
          const [settled, final, approved] = await Promise.all([settlementFinal(id, end), allFinal(end), firstApproved(end)]);
          row.settled.push(settled);
          row.final.push(final);
          row.approved.push(approved);
        } catch (error) {
          row.errors.push((error as Error).message);
        } finally {
          joinproto.hold.release();
        }
      }
      process.stderr.write(`${kind}: done${row.errors.length ? ` (${row.errors.length} failed: ${row.errors[0]})` : ''}\n`);
    }

    const b = [...baseline].sort((x, y) => x - y);
    const b50 = percentile(b, 50);
    const fmt = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : '—');
    console.log(
      `\nfaults benchmark: ${RUNS} runs per fault, real processes on loopback (own Redis${pg ? ' and PostgreSQL' : ''}), bound ${BOUND_MS / 1000} s per measurement\n`,
    );
    console.log(
      `| fault | runs ok | fault end → all operations final p50 / max | fault end → first new payment approved p50 / max | ratio to baseline (p50) |`,
    );
    console.log(`|---|---|---|---|---|`);
    console.log(`| none (baseline: one approved payment) | ${b.length}/${b.length} | — | ${fmt(b50)} / ${fmt(b[b.length - 1] ?? NaN)} | 1× |`);
    for (const row of rows) {
      const f = [...row.final].sort((x, y) => x - y);
      const a = [...row.approved].sort((x, y) => x - y);
      const ratio = a.length ? `${(percentile(a, 50) / b50).toFixed(0)}×` : '—';
      console.log(
        `| ${row.kind} | ${f.length}/${RUNS} | ${fmt(percentile(f, 50))} / ${fmt(f[f.length - 1] ?? NaN)} | ${fmt(percentile(a, 50))} / ${fmt(a[a.length - 1] ?? NaN)} | ${ratio} |`,
      );
    }
    for (const row of rows) {
      const a = [...row.approved].sort((x, y) => x - y);
      if (a.length === 0) continue;
      reportRow({
        bench: `faults: ${row.kind} → first payment approved (${a.length}/${RUNS} healed)`,
        measured: percentile(a, 50),
        baseline: b50,
        unit: 'ms p50',
        ratio: percentile(a, 50) / b50,
      });
    }
    const sb = [...settlementBaseline].sort((x, y) => x - y);
    const sb50 = percentile(sb, 50);
    if (settlementRows.length > 0) {
      console.log(`\nsettlement faults: the Joinproto close-day held at the bank when the process is killed; bound ${SETTLEMENT_BOUND_MS / 1000} s\n`);
      console.log(
        `| fault | runs ok | fault end → settlement final p50 / max | fault end → all operations final p50 / max | fault end → first new payment approved p50 / max | ratio to baseline (settlement final p50) |`,
      );
      console.log(`|---|---|---|---|---|---|`);
      console.log(`| none (baseline: one settlement) | ${sb.length}/${sb.length} | ${fmt(sb50)} / ${fmt(sb[sb.length - 1] ?? NaN)} | — | — | 1× |`);
      for (const row of settlementRows) {
        const [st, f, a] = [row.settled, row.final, row.approved].map((xs) => [...xs].sort((x, y) => x - y));
        const ratio = st.length ? `${(percentile(st, 50) / sb50).toFixed(0)}×` : '—';
        console.log(
          `| ${row.kind} | ${st.length}/${RUNS} | ${fmt(percentile(st, 50))} / ${fmt(st[st.length - 1] ?? NaN)} | ${fmt(percentile(f, 50))} / ${fmt(f[f.length - 1] ?? NaN)} | ${fmt(percentile(a, 50))} / ${fmt(a[a.length - 1] ?? NaN)} | ${ratio} |`,
        );
      }
    }
    for (const row of settlementRows) {
      const st = [...row.settled].sort((x, y) => x - y);
      if (st.length === 0) continue;
      reportRow({
        bench: `faults: ${row.kind} → settlement final (${st.length}/${RUNS} healed)`,
        measured: percentile(st, 50),
        baseline: sb50,
        unit: 'ms p50',
        ratio: percentile(st, 50) / sb50,
      });
    }
    const failed = [...rows, ...settlementRows].filter((r) => r.errors.length);
    if (failed.length) {
      console.log('\nruns that did not heal within the bound:');
      for (const r of failed) for (const e of r.errors) console.log(`  ${r.kind}: ${e}`);
    }
  } catch (error) {
    console.error(stack.logs());
    throw error;
  } finally {
    await stack.stop();
    await Promise.allSettled([joinproto.close(), ssi.stop()]);
    await redis.stop();
    await pg?.destroy();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
