import { connect, type Socket } from 'node:net';

import type { DriverConfig } from '../index';
import type { ExecuteHooks, OperationCommand, OperationFrame, OperationProgress, OperationType, ProtocolRefs } from '../types';

/** A LinkFactory over direct TCP that resolves once connected (tests only). */
export function tcpLink(port: number, host = '127.0.0.1'): () => Promise<Socket> {
  return () =>
    new Promise<Socket>((resolve, reject) => {
      const socket = connect(port, host);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(socket);
      });
      socket.once('error', reject);
    });
}

/** Hooks that record what the driver reported, and in which order relative to the bytes sent. */
export function recordingHooks(onBeforeSend?: (refs: ProtocolRefs) => void | Promise<void>) {
  const refs: ProtocolRefs[] = [];
  const progress: OperationProgress[] = [];
  const frames: OperationFrame[] = [];
  const hooks: ExecuteHooks = {
    beforeSend: async (r) => {
      refs.push(r);
      await onBeforeSend?.(r);
    },
    onProgress: (p) => progress.push(p),
    onFrame: (f) => frames.push(f),
  };
  return { hooks, refs, progress, frames };
}

let counter = 0;
export function command(type: OperationType, fields: Partial<OperationCommand> = {}): OperationCommand {
  return { operationId: `op-${++counter}`, type, currency: 'RUB', ...fields };
}

/**
 * A JPAY (aQsi) driver's configuration for the simulator on `port` (its default admin password, UTC, 2 s commands);
 * `overrides` replace any field.
 */
export function jpayDriverConfig(port: number, adminPassword: string, overrides: Partial<DriverConfig> = {}): DriverConfig {
  return {
    terminalRowId: 't1',
    protocol: 'JPAY',
    dialect: 'aqsi',
    terminalId: null,
    merchantId: null,
    department: null,
    credentials: { adminPassword },
    link: tcpLink(port),
    timeZone: 'UTC',
    options: { commandTimeoutMs: 2_000 },
    ...overrides,
  };
}
