/**
 * Micro-benchmark: bytes through two connected Multiplexers over an in-memory pipe, against a plain
 * in-memory copy with the same chunking and one async hop per chunk, measured in the same run.
 * Run: npx tsx bench/tunnel/mux.bench.ts   (about 10 s)
 */
import { performance } from 'node:perf_hooks';

import { createMemoryPipe, Multiplexer, type TunnelStream } from '@payorch/tunnel';

import { QUICK, reportRow } from '../support/report';

const CHUNK = 64 * 1024;
const BUDGET_MS = QUICK ? 600 : 2800;

interface Result {
  bytes: number;
  ms: number;
}

const mbPerSecond = (result: Result): number => result.bytes / 1024 / 1024 / (result.ms / 1000);

/** Baseline: copy every chunk into a fresh buffer and hand it over on the next microtask. */
async function baseline(): Promise<Result> {
  const source = new Uint8Array(CHUNK).fill(7);
  let received = 0;
  const start = performance.now();
  while (performance.now() - start < BUDGET_MS) {
    for (let i = 0; i < 64; i++) {
      const copy = new Uint8Array(source);
      await Promise.resolve();
      received += copy.length;
    }
  }
  return { bytes: received, ms: performance.now() - start };
}

async function connectedPair(): Promise<{ agent: Multiplexer; connector: Multiplexer }> {
  const [agentSide, connectorSide] = createMemoryPipe();
  const agent = new Multiplexer(agentSide, {
    role: 'agent',
    software: 'bench-agent/1',
    heartbeat: false,
  });
  const connector = new Multiplexer(connectorSide, {
    role: 'connector',
    software: 'bench-connector/1',
    heartbeat: false,
  });
  agentSide.attach(agent);
  connectorSide.attach(connector);
  const ready = Promise.all([new Promise((r) => agent.onReady(r)), new Promise((r) => connector.onReady(r))]);
  connector.start();
  agent.start();
  await ready;
  return { agent, connector };
}

/** `streams` streams write in parallel for the time budget; the agent side counts what it receives. */
async function throughTunnel(streams: number): Promise<Result> {
  const { agent, connector } = await connectedPair();
  let received = 0;
  agent.setOpenHandler((request) => request.accept().onData((chunk) => (received += chunk.length)));
  const opened: TunnelStream[] = await Promise.all(
    Array.from({ length: streams }, () => connector.open({ kind: 'tcp-connect', host: 'bench.local', port: 1 })),
  );
  const source = new Uint8Array(CHUNK).fill(7);
  const start = performance.now();
  await Promise.all(
    opened.map(async (stream) => {
      while (performance.now() - start < BUDGET_MS) {
        if (!stream.write(source))
          await new Promise<void>((resolve) => {
            const off = stream.onDrain(() => {
              off();
              resolve();
            });
          });
      }
    }),
  );
  const result = { bytes: received, ms: performance.now() - start };
  agent.close();
  connector.close();
  return result;
}

async function main(): Promise<void> {
  const base = await baseline();
  const one = await throughTunnel(1);
  const eight = await throughTunnel(8);
  const rows = [
    ['in-memory copy (baseline)', base],
    ['tunnel, 1 stream', one],
    ['tunnel, 8 streams', eight],
  ] as const;
  console.log('tunnel multiplexer throughput (64 KiB writes, in-memory pipe, default windows)');
  for (const [name, result] of rows) {
    console.log(
      `${name.padEnd(28)} ${mbPerSecond(result).toFixed(1).padStart(9)} MB/s   ratio to baseline ${(mbPerSecond(result) / mbPerSecond(base)).toFixed(3)}`,
    );
  }
  for (const [name, result] of [
    ['tunnel mux: 1 stream (in-memory)', one],
    ['tunnel mux: 8 streams (in-memory)', eight],
  ] as const) {
    reportRow({ bench: name, measured: mbPerSecond(result), baseline: mbPerSecond(base), unit: 'MB/s', ratio: mbPerSecond(result) / mbPerSecond(base) });
  }
  process.exit(0);
}

void main();
