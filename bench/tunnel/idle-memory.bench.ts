/**
 * Memory per idle agent connection on the connector side: N agents (a child process) hold a tunnel
 * each (WebSocket + Multiplexer with heartbeats, handshake done, terminal list received); the
 * connector process reports heap and RSS growth per 1,000 connections, against N bare WebSocket
 * connections (no tunnel) measured in the same run. Each measurement runs in a fresh process (ROUNDS per kind,
 * alternating; the medians are compared).
 * Run: node scripts/run-ts.mjs bench/tunnel/idle-memory.bench.ts   (AGENTS=5000 default, the figure: fewer agents let the
 * young generation's growth during the handshakes, a fixed cost, weigh on the per-1,000 figure; BENCH_QUICK=1: 300)
 */
import { fork } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { WebSocket, WebSocketServer } from 'ws';

import { attachWebSocket, type Multiplexer } from '@payorch/tunnel';

import { QUICK, reportRow } from '../support/report';

const AGENTS = Number(process.env.AGENTS ?? (QUICK ? 300 : 5000));
/** Runs per kind (the median is reported). */
const ROUNDS = Number(process.env.ROUNDS ?? (QUICK ? 1 : 3));

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function child(url: string, count: number, tunnel: boolean): Promise<void> {
  const sockets: WebSocket[] = [];
  let ready = 0;
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(url);
    sockets.push(ws);
    if (tunnel) {
      const mux = attachWebSocket(ws, { role: 'agent', software: 'bench-agent/1' });
      mux.onControl(() => (ready += 1) === count && process.send!('ready'));
    } else {
      ws.once('open', () => (ready += 1) === count && process.send!('ready'));
    }
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, 10));
  }
  process.on('message', () => process.exit(0));
}

function memory(): { heap: number; rss: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.external + m.arrayBuffers, rss: m.rss };
}

async function phase(tunnel: boolean): Promise<{ heap: number; rss: number; ms: number }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 80 * 1024 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const muxes: Multiplexer[] = [];
  // One options object for every tunnel, as the connector passes (AgentTunnelServer.tunnelOptions).
  const options = { role: 'connector', software: 'bench-connector/1' } as const;
  wss.on('connection', (ws) => {
    if (!tunnel) return;
    const mux = attachWebSocket(ws, options);
    mux.onReady(() =>
      mux.sendControl({
        type: 'terminal-list',
        terminals: [{ terminalId: 't1', protocol: 'joinproto', link: { kind: 'tcp-connect', host: '10.0.0.5', port: 2000 } }],
      }),
    );
    muxes.push(mux);
  });
  const before = memory();
  const start = Date.now();
  const agents = fork(__filename, ['child', `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, String(AGENTS), tunnel ? 'tunnel' : 'bare'], {
    execArgv: process.execArgv,
    stdio: 'inherit',
  });
  await new Promise<void>((resolve) => agents.once('message', () => resolve()));
  const ms = Date.now() - start;
  await new Promise((r) => setTimeout(r, 500));
  const after = memory();
  agents.send('stop');
  await new Promise((r) => agents.once('exit', r));
  for (const client of wss.clients) client.terminate();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
  muxes.length = 0;
  return { heap: after.heap - before.heap, rss: after.rss - before.rss, ms };
}

/** One phase in a fresh process of its own, so neither kind inherits the other's freed pages (RSS) or heap. */
function isolatedPhase(tunnel: boolean): Promise<{ heap: number; rss: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const server = fork(__filename, ['phase', tunnel ? 'tunnel' : 'bare'], { execArgv: process.execArgv, stdio: 'inherit' });
    server.once('message', (result: { heap: number; rss: number; ms: number }) => resolve(result));
    server.once('exit', (code) => code !== 0 && reject(new Error(`idle-memory phase exited with ${code}`)));
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  if (process.argv[2] === 'child') return child(process.argv[3]!, Number(process.argv[4]), process.argv[5] === 'tunnel');
  if (process.argv[2] === 'phase') {
    process.send!(await phase(process.argv[3] === 'tunnel'));
    process.exit(0);
  }
  const perK = (bytes: number) => (bytes / 1024 / 1024 / (AGENTS / 1000)).toFixed(1);
  // Each kind measured ROUNDS times, alternating, each in a fresh process; the medians are compared (RSS after a
  // GC still moves by a few MB with the allocator's timing: one pair of runs gave 0.86x, another 2.0x).
  const bares: Array<{ heap: number; rss: number; ms: number }> = [];
  const tunnels: Array<{ heap: number; rss: number; ms: number }> = [];
  for (let round = 0; round < ROUNDS; round++) {
    bares.push(await isolatedPhase(false));
    tunnels.push(await isolatedPhase(true));
  }
  const pick = (runs: Array<{ heap: number; rss: number; ms: number }>) => ({
    heap: median(runs.map((r) => r.heap)),
    rss: median(runs.map((r) => r.rss)),
    ms: median(runs.map((r) => r.ms)),
  });
  const bare = pick(bares);
  const tunnel = pick(tunnels);
  console.log(`idle agent connections: ${AGENTS} (connector-side memory, MB per 1,000 connections; median of ${ROUNDS} fresh processes per kind)`);
  console.log(`  rss per round, bare: ${bares.map((r) => perK(r.rss)).join(' / ')}; tunnel: ${tunnels.map((r) => perK(r.rss)).join(' / ')}`);
  console.log(`bare WebSocket (baseline)   heap+external ${perK(bare.heap).padStart(6)}   rss ${perK(bare.rss).padStart(6)}   connected in ${bare.ms} ms`);
  console.log(
    `tunnel (WS + Multiplexer)   heap+external ${perK(tunnel.heap).padStart(6)}   rss ${perK(tunnel.rss).padStart(6)}   handshaken in ${tunnel.ms} ms`,
  );
  console.log(`ratio tunnel/bare           heap+external ${(tunnel.heap / Math.max(1, bare.heap)).toFixed(2)}x`);
  console.log(
    'profile (heap snapshots of 1,000 idle tunnels diffed against 1,000 bare sockets, by constructor): a tunnel held 2.9 KB - sixteen\n' +
      'option fields, 16 closures with their contexts (~1 KB), a Timeout + closure + Heartbeat, four listener sets, an empty stream Map and\n' +
      'ready Set. Now ~0.9 KB: settings shared per options object, prototype methods instead of closures, one HeartbeatWheel timer per\n' +
      'interval, shared empty tables, listener sets on first use. Below ~3,000 agents the young generation grown by the handshakes\n' +
      '(fixed, ~10 MB) dominates RSS per 1,000.',
  );
  const mb = (bytes: number) => bytes / 1024 / 1024 / (AGENTS / 1000);
  reportRow({
    bench: `tunnel: RSS per 1,000 idle agents (${AGENTS})`,
    measured: mb(tunnel.rss),
    baseline: mb(bare.rss),
    unit: 'MB/1k',
    ratio: tunnel.rss / Math.max(1, bare.rss),
    goal: { on: 'ratio', op: '<=', value: 1.3 },
  });
  process.exit(0);
}

void main();
