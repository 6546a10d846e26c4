import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';

import { createDriver, type DriverOptions, type LinkFactory, type TerminalDriver } from '@payorch/drivers';

import { idem } from '../../test/e2e/support/gateway-session';

/** A driver's link to a terminal (simulator) listening on a loopback port: plain TCP, no delay. */
export const tcpLink =
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

/**
 * The benches' HTTP client: node:http on keep-alive connections. It runs in the bench's process, on the gateway's event
 * loop (its CPU is counted with the gateway's), so it is the lightest client Node has: `fetch` (undici, web streams) cost
 * ~6 % of that process's CPU per operation in a profile (2026-12-05), time the gateway then did not have.
 */
export const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 256 });

/** POSTs `body` as JSON with the API key and a fresh Idempotency-Key; resolves the answer's JSON when it is 201. */
export function post(base: string, apiKey: string, path: string, body: object): Promise<Record<string, unknown>> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${base}${path}`,
      {
        method: 'POST',
        agent: keepAlive,
        headers: {
          Authorization: `Bearer ${apiKey}`,
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(payload),
          'Idempotency-Key': idem(),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          try {
            const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
            if (res.statusCode !== 201) reject(new Error(`POST ${path}: ${res.statusCode} ${JSON.stringify(json)}`));
            else resolve(json);
          } catch (error) {
            reject(error as Error);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A production Joinproto driver (the baseline of the benches) over `link`, with no terminal-specific settings. */
export function joinprotoDriver(link: LinkFactory, options?: DriverOptions): TerminalDriver {
  return createDriver({
    terminalRowId: randomUUID(),
    protocol: 'JOINPROTO',
    dialect: null,
    terminalId: null,
    merchantId: null,
    department: null,
    credentials: null,
    link,
    ...(options && { options }),
  });
}

/** Hooks of a driver's command that persist nothing (the benches' baselines). */
export const noHooks = { beforeSend: async () => undefined, onProgress: () => undefined };
