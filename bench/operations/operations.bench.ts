/**
 * Operations benchmark: `POST /v1/terminals/{id}/operations?wait=…` → approved through the whole
 * gateway stack (auth, rate limit, idempotency, PostgreSQL under RLS, in-process dispatcher →
 * OperationExecutor → Joinproto driver → simulator over TCP), with N terminals driven concurrently,
 * vs the baseline measured in the same run: the same driver → simulator round trip alone, N concurrent.
 * Prints operations/s, p50 / p99 latency and the ratios (how much the API + database add).
 * Prints SQL statements and transactions per operation (bench/support/sql-counter.ts).
 * Run: node scripts/run-ts.mjs bench/operations/operations.bench.ts   (about 20 s; BENCH_QUICK=1: ~8 s; TERMINALS, SECONDS to change)
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';

import { createDriver, type LinkFactory } from '@payorch/drivers';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { GatewaySession, idem } from '../../test/e2e/support/gateway-session';
import { InProcessDispatcher } from '../../test/e2e/support/in-process-dispatcher';
import { QUICK, reportRow } from '../support/report';
import { installSqlCounter, perEvent, sqlSnapshot } from '../support/sql-counter';

// Before the gateway creates its pools: counts the statements and transactions per operation.
installSqlCounter();

const TERMINALS = Number(process.env.TERMINALS ?? 4);
const SECONDS = Number(process.env.SECONDS ?? (QUICK ? 2 : 8));
const hooks = { beforeSend: async () => undefined, onProgress: () => undefined };

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

const tcpLink =
  (port: number): LinkFactory =>
  () =>
    new Promise<Duplex>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.removeListener('error', reject);
        socket.setNoDelay(true);
        resolve(socket);
      });
      socket.once('error', reject);
    });

interface Result {
  ops: number;
  seconds: number;
  latencies: number[];
}

/** Runs `once` in a loop on each of `lanes` concurrently for SECONDS, after one warm-up call per lane. */
async function measure(lanes: number, once: (lane: number) => Promise<void>): Promise<Result> {
  await Promise.all(Array.from({ length: lanes }, (_, lane) => once(lane)));
  const latencies: number[] = [];
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      while (performance.now() < deadline) {
        const t = performance.now();
        await once(lane);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { ops: latencies.length, seconds: (performance.now() - start) / 1000, latencies: latencies.sort((a, b) => a - b) };
}

function report(name: string, r: Result): { rate: number; p50: number; p99: number } {
  const rate = r.ops / r.seconds;
  const p50 = percentile(r.latencies, 50);
  const p99 = percentile(r.latencies, 99);
  console.log(
    `${name.padEnd(44)} ${rate.toFixed(1).padStart(8)} ops/s   p50 ${p50.toFixed(2).padStart(7)} ms   p99 ${p99.toFixed(2).padStart(7)} ms   (${r.ops} ops)`,
  );
  return { rate, p50, p99 };
}

async function main(): Promise<void> {
  const sims = await Promise.all(
    Array.from({ length: TERMINALS }, async () => {
      const sim = new JoinprotoTerminalSimulator();
      return { sim, port: (await sim.listen(0)).port };
    }),
  );

  // Baseline: the driver → simulator round trip alone, one driver per terminal.
  const drivers = sims.map(({ port }) =>
    createDriver({
      terminalRowId: randomUUID(),
      protocol: 'JOINPROTO',
      dialect: null,
      terminalId: null,
      merchantId: null,
      department: null,
      credentials: null,
      link: tcpLink(port),
    }),
  );
  const baseline = await measure(TERMINALS, async (lane) => {
    const outcome = await drivers[lane]!.execute({ operationId: randomUUID(), type: 'purchase', amount: 1500, currency: 'RUB' }, hooks);
    if (outcome.state !== 'approved') throw new Error(`baseline: unexpected outcome ${outcome.state}`);
  });
  await Promise.all(drivers.map((d) => d.close()));

  // Full stack: gateway + PostgreSQL + in-process dispatcher + executor + driver + simulator.
  const session = new GatewaySession();
  let dispatcher!: InProcessDispatcher;
  session.dispatcherFactory = (appUrl, publish) => (dispatcher = new InProcessDispatcher(appUrl, publish));
  await session.start({ RATE_LIMIT_PER_MINUTE: '100000000' });
  try {
    const { apiKey } = await session.tenant();
    const headers = { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' };
    const base = `http://127.0.0.1:${(session.app.getHttpServer().address() as AddressInfo).port}`;
    const post = async (path: string, body: object) => {
      const res = await fetch(`${base}${path}`, { method: 'POST', headers: { ...headers, 'Idempotency-Key': idem() }, body: JSON.stringify(body) });
      const json = (await res.json()) as Record<string, unknown>;
      if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const storeId = (await post('/v1/stores', { name: 'Bench', timeZone: 'UTC' })).id as string;
    const terminals: string[] = [];
    for (const { port } of sims) {
      const id = (await post('/v1/terminals', { name: 'T', storeId, protocol: 'joinproto', connection: { kind: 'tcp', host: '127.0.0.1', port: 1 } }))
        .id as string;
      dispatcher.route(id, { port });
      terminals.push(id);
    }
    const sqlBefore = sqlSnapshot();
    const full = await measure(TERMINALS, async (lane) => {
      const op = await post(`/v1/terminals/${terminals[lane]}/operations?wait=10000`, { type: 'purchase', amount: 1500, currency: 'RUB' });
      if (op.state !== 'approved') throw new Error(`full stack: unexpected state ${String(op.state)}`);
    });
    // The warm-up calls (one per lane) are counted too: they are operations like the others.
    const sql = perEvent(sqlBefore, sqlSnapshot(), full.ops + TERMINALS);

    console.log(`\noperations benchmark: ${TERMINALS} terminals, ${SECONDS} s per measurement (Joinproto simulator over loopback TCP)\n`);
    const b = report('driver → simulator round trip (baseline)', baseline);
    const f = report('POST /operations → approved (full stack)', full);
    console.log(
      `\nratio full/baseline: throughput ${(f.rate / b.rate).toFixed(3)}×, p50 latency ${(f.p50 / b.p50).toFixed(2)}×, p99 latency ${(f.p99 / b.p99).toFixed(2)}×` +
        `  (API + database add ${(f.p50 - b.p50).toFixed(2)} ms at p50)`,
    );
    console.log(`SQL per operation: ${sql.statements} statements in ${sql.transactions} transactions`);
    reportRow({
      bench: `operations: POST ?wait → approved, ${TERMINALS} terminals (throughput)`,
      measured: f.rate,
      baseline: b.rate,
      unit: 'ops/s',
      ratio: f.rate / b.rate,
      goal: { on: 'ratio', op: '>=', value: 0.5 },
      perEvent: sql,
    });
    reportRow({
      bench: `operations: added latency at p50, ${TERMINALS} terminals`,
      measured: f.p50 - b.p50,
      baseline: b.p50,
      unit: 'ms',
      ratio: f.p50 / b.p50,
      goal: { on: 'measured', op: '<=', value: 3 },
      perEvent: sql,
    });
  } finally {
    await dispatcher?.close();
    await session.stop();
    await Promise.all(sims.map(({ sim }) => sim.close()));
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
