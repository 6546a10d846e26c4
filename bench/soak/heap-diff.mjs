#!/usr/bin/env node
// What grew between two heap snapshots of one process (bench/soak/memory.bench.ts SNAPSHOTS=<dir>):
//   node bench/soak/heap-diff.mjs <first.heapsnapshot> <second.heapsnapshot> [samples]
// Prints the change by kind of node (count, self size), then the retainer paths (from a GC root, last 7 steps) of a
// sample of the nodes the second snapshot has and the first had not (node ids are stable within a process), most
// frequent first. A structure that keeps something per event shows as one path repeated; V8's code and module
// caches show as code, ModuleWrap and PrincipalRealm paths.
import { readFileSync } from 'node:fs';

const [first, second, samples = '2000'] = process.argv.slice(2);
if (!first || !second) {
  console.error('usage: node bench/soak/heap-diff.mjs <first.heapsnapshot> <second.heapsnapshot> [samples]');
  process.exit(2);
}

function load(file) {
  const s = JSON.parse(readFileSync(file, 'utf8'));
  const meta = s.snapshot.meta;
  const nf = meta.node_fields;
  const ef = meta.edge_fields;
  return {
    s,
    F: nf.length,
    E: ef.length,
    types: meta.node_types[0],
    edgeTypes: meta.edge_types[0],
    at: { type: nf.indexOf('type'), name: nf.indexOf('name'), id: nf.indexOf('id'), size: nf.indexOf('self_size'), edges: nf.indexOf('edge_count') },
    edge: { type: ef.indexOf('type'), name: ef.indexOf('name_or_index'), to: ef.indexOf('to_node') },
  };
}

function kind(h, i) {
  const type = h.types[h.s.nodes[i + h.at.type]];
  if (type.includes('string')) return `${type} (string)`;
  if (type === 'code') return 'code';
  return `${type} ${String(h.s.strings[h.s.nodes[i + h.at.name]]).slice(0, 60)}`;
}

function byKind(h) {
  const totals = new Map();
  for (let i = 0; i < h.s.nodes.length; i += h.F) {
    const k = kind(h, i);
    const t = totals.get(k) ?? { count: 0, size: 0 };
    t.count++;
    t.size += h.s.nodes[i + h.at.size];
    totals.set(k, t);
  }
  return totals;
}

const a = load(first);
const before = byKind(a);
const oldIds = new Set();
for (let i = 0; i < a.s.nodes.length; i += a.F) oldIds.add(a.s.nodes[i + a.at.id]);
a.s = undefined;

const b = load(second);
const after = byKind(b);
const rows = [];
for (const [k, t] of after) {
  const o = before.get(k) ?? { count: 0, size: 0 };
  if (t.count !== o.count || t.size !== o.size) rows.push([k, t.count - o.count, t.size - o.size]);
}
rows.sort((x, y) => Math.abs(y[2]) - Math.abs(x[2]));
console.log('change by kind (count, bytes):');
for (const [k, count, size] of rows.slice(0, 30)) console.log(`${String(count).padStart(9)} ${String(size).padStart(11)}  ${k}`);

const { nodes, edges, strings } = b.s;
const N = nodes.length / b.F;
const firstEdge = new Uint32Array(N + 1);
for (let i = 0, e = 0; i < N; i++) {
  firstEdge[i] = e;
  e += nodes[i * b.F + b.at.edges] * b.E;
}
firstEdge[N] = edges.length;
const retainers = Array.from({ length: N }, () => []);
for (let i = 0; i < N; i++) {
  for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += b.E) {
    if (b.edgeTypes[edges[e + b.edge.type]] === 'weak') continue;
    retainers[edges[e + b.edge.to] / b.F].push([i, e]);
  }
}
const label = (n) => `${b.types[nodes[n * b.F + b.at.type]]} ${String(strings[nodes[n * b.F + b.at.name]]).slice(0, 50)}`;
const edgeName = (e) => {
  const t = b.edgeTypes[edges[e + b.edge.type]];
  return t === 'element' || t === 'hidden' ? '[]' : `.${strings[edges[e + b.edge.name]]}`;
};
const fresh = [];
for (let n = 0; n < N; n++) {
  const t = b.types[nodes[n * b.F + b.at.type]];
  if (t === 'code' || t === 'hidden' || t === 'array') continue;
  if (!oldIds.has(nodes[n * b.F + b.at.id])) fresh.push(n);
}
console.log(`\n${fresh.length} new nodes (code, hidden and arrays left out); retainer paths of a sample:`);
const paths = new Map();
const step = Math.max(1, Math.floor(fresh.length / Number(samples)));
for (let k = 0; k < fresh.length; k += step) {
  const start = fresh[k];
  const previous = new Map([[start, null]]);
  let queue = [start];
  let root = null;
  while (queue.length > 0 && root === null) {
    const next = [];
    for (const x of queue) {
      for (const [p, e] of retainers[x]) {
        if (previous.has(p)) continue;
        previous.set(p, [x, e]);
        if (label(p).startsWith('synthetic')) {
          root = p;
          break;
        }
        next.push(p);
      }
      if (root !== null) break;
    }
    queue = next;
  }
  const path = [];
  for (let cur = root; cur !== null && previous.get(cur); cur = previous.get(cur)[0]) path.push(`${label(cur)}${edgeName(previous.get(cur)[1])}`);
  path.push(label(start));
  const key = path.slice(-7).join(' -> ');
  paths.set(key, (paths.get(key) ?? 0) + 1);
}
for (const [path, count] of [...paths].sort((x, y) => y[1] - x[1]).slice(0, 25)) console.log(`${String(count).padStart(5)}  ${path}`);
