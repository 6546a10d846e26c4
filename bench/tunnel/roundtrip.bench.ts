/**
 * Tunnel end-to-end benchmarks, each against a baseline measured in the same run:
 *  1. command round trip: the Joinproto driver (purchase, simulator with no processing delay) through
 *     connector Multiplexer → WebSocket → agent LinkBridge → TCP → simulator, vs the same driver over
 *     direct TCP to the simulator (p50 / p99, ratio);
 *  2. relay-sized bulk throughput: bytes through a tunnel stream to a TCP sink behind the agent, vs a
 *     direct loopback TCP connection to the same sink (MB/s, ratio).
 * Run: node scripts/run-ts.mjs bench/tunnel/roundtrip.bench.ts   (about 15 s; ROUNDS / MB to change)
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';

import { createDriver, type LinkFactory } from '@payorch/drivers';
import { JoinprotoTerminalSimulator } from '@payorch/testing/joinproto-sim';

import { QUICK, reportRow } from '../support/report';

import { percentile, sinkServer, tunnelPair } from './support';

const ROUNDS = Number(process.env.ROUNDS ?? (QUICK ? 60 : 300));
const MB = Number(process.env.MB ?? (QUICK ? 16 : 64));
const hooks = { beforeSend: async () => undefined, onProgress: () => undefined };

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

async function roundTrips(link: LinkFactory): Promise<number[]> {
  const driver = createDriver({
    terminalRowId: randomUUID(),
    protocol: 'JOINPROTO',
    dialect: null,
    terminalId: null,
    merchantId: null,
    department: null,
    credentials: null,
    link,
  });
  const times: number[] = [];
  await driver.execute({ operationId: randomUUID(), type: 'purchase', amount: 100, currency: 'RUB' }, hooks); // warm-up, opens the link
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now();
    const outcome = await driver.execute({ operationId: randomUUID(), type: 'purchase', amount: 1500, currency: 'RUB' }, hooks);
    times.push(performance.now() - start);
    if (outcome.state !== 'approved') throw new Error(`unexpected outcome ${outcome.state}`);
  }
  await driver.close();
  return times.sort((a, b) => a - b);
}

/** Time until the sink has received every byte written to `target`. */
async function pump(target: Duplex, bytes: number, received: () => number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 7);
  const base = received();
  const start = performance.now();
  let sent = 0;
  while (sent < bytes) {
    if (!target.write(chunk)) await new Promise((r) => target.once('drain', r));
    sent += chunk.length;
  }
  while (received() - base < sent) await new Promise((r) => setImmediate(r));
  const ms = performance.now() - start;
  target.destroy();
  return ms;
}

async function main(): Promise<void> {
  const sim = new JoinprotoTerminalSimulator({ processingDelayMs: 0 });
  const { port } = await sim.listen();
  const sink = await sinkServer();
  const tunnel = await tunnelPair([
    { terminalId: 'bench-t1', protocol: 'joinproto', link: { kind: 'tcp-connect', host: '127.0.0.1', port } },
    { terminalId: 'bench-sink', protocol: 'joinproto', link: { kind: 'tcp-connect', host: '127.0.0.1', port: sink.port } },
  ]);

  const direct = await roundTrips(tcpLink(port));
  sim.disconnect();
  const tunnelled = await roundTrips(() => tunnel.link('bench-t1'));
  const row = (name: string, t: number[]) =>
    `${name.padEnd(26)} p50 ${percentile(t, 50).toFixed(2).padStart(7)} ms   p99 ${percentile(t, 99).toFixed(2).padStart(7)} ms`;
  console.log(`command round trip (Joinproto purchase, ${ROUNDS} rounds)`);
  console.log(row('direct TCP (baseline)', direct));
  console.log(row('through the tunnel', tunnelled));
  console.log(
    `ratio tunnel/direct        p50 ${(percentile(tunnelled, 50) / percentile(direct, 50)).toFixed(2)}x   p99 ${(percentile(tunnelled, 99) / percentile(direct, 99)).toFixed(2)}x`,
  );

  const bytes = MB * 1024 * 1024;
  const directMs = await pump(await tcpLink(sink.port)(), bytes, sink.received);
  const tunnelMs = await pump(await tunnel.link('bench-sink'), bytes, sink.received);
  const mbps = (ms: number) => MB / (ms / 1000);
  console.log(`\nbulk throughput (${MB} MiB, 64 KiB writes)`);
  console.log(`direct loopback TCP (baseline) ${mbps(directMs).toFixed(0).padStart(6)} MB/s`);
  console.log(`through the tunnel             ${mbps(tunnelMs).toFixed(0).padStart(6)} MB/s`);
  console.log(`ratio tunnel/direct            ${(mbps(tunnelMs) / mbps(directMs)).toFixed(2)}x`);
  reportRow({
    bench: 'tunnel: command round trip p50',
    measured: percentile(tunnelled, 50),
    baseline: percentile(direct, 50),
    unit: 'ms p50',
    ratio: percentile(tunnelled, 50) / percentile(direct, 50),
  });
  reportRow({
    bench: 'tunnel: relay bulk vs direct loopback TCP',
    measured: mbps(tunnelMs),
    baseline: mbps(directMs),
    unit: 'MB/s',
    ratio: mbps(tunnelMs) / mbps(directMs),
    goal: { on: 'ratio', op: '>=', value: 0.6 },
  });

  await tunnel.close();
  await sink.close();
  await sim.close();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
