import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

import type { Database } from '@payorch/db';
import { createDriver, type DriverOptions, type OperationCommand, type OperationOutcome, type ProtocolRefs, type TerminalDriver } from '@payorch/drivers';

import { RunnerUnavailable, type SettlementOperationRef, type SettlementRunner } from './settlement-runner';

export interface DriverRunnerOptions {
  driverOptions?: DriverOptions;
  /** TCP connect timeout to the terminal. Default 2 s. */
  connectTimeoutMs?: number;
  /**
   * Test fault: after the terminal answered, neither persist the outcome nor return (the process
   * "dies" between sending the close-day and recording its answer). The row stays SENT.
   */
  hangAfterSend?: (ref: SettlementOperationRef) => boolean;
}

/**
 * Runs the settlement operation in process with @payorch/drivers over a direct TCP link (terminal
 * connection `{kind:'tcp', host, port}`), writing the operation's state transitions the way the
 * connector's executor does. A development and test tool: in production terminals sit behind agents
 * and {@link DispatcherSettlementRunner} sends the operation through the connector. One command at a
 * time per terminal (in this process): a second one is TERMINAL_BUSY.
 */
export class DriverSettlementRunner implements SettlementRunner {
  private readonly busy = new Set<string>();

  constructor(
    private readonly db: Database,
    private readonly options: DriverRunnerOptions = {},
  ) {}

  execute(ref: SettlementOperationRef): Promise<void> {
    return this.exclusive(ref, async (driver, command) => {
      const outcome = await driver.execute(command, {
        beforeSend: async (refs) => {
          const { count } = await this.db.withTenant(ref.tenantId, (tx) =>
            tx.terminalOperation.updateMany({ where: { id: ref.operationId, state: 'PENDING' }, data: { state: 'SENT', protocolRefs: refs as never } }),
          );
          // Not ours to send any more (e.g. failed as never sent by the recovery sweep): the driver sends nothing.
          if (count === 0) throw new Error('the operation is no longer PENDING; not sending');
        },
        onProgress: () => undefined,
      });
      if (this.options.hangAfterSend?.(ref)) {
        // Simulated crash: the answer is lost with the process; the terminal is free again.
        this.busy.delete(ref.terminalId);
        await driver.close();
        return new Promise<never>(() => undefined);
      }
      if (outcome.state === 'failed' && outcome.reason?.startsWith('not sent')) {
        throw new RunnerUnavailable('TERMINAL_OFFLINE', outcome.reason);
      }
      await this.persist(ref, outcome);
    });
  }

  recover(ref: SettlementOperationRef): Promise<void> {
    return this.exclusive(ref, async (driver, command) => {
      const row = await this.db.withTenant(ref.tenantId, (tx) => tx.terminalOperation.findUniqueOrThrow({ where: { id: ref.operationId } }));
      const outcome = await driver.recover(command, (row.protocolRefs ?? {}) as ProtocolRefs);
      await this.persist(ref, outcome);
    });
  }

  private async exclusive(ref: SettlementOperationRef, fn: (driver: TerminalDriver, command: OperationCommand) => Promise<void>): Promise<void> {
    if (this.busy.has(ref.terminalId)) throw new RunnerUnavailable('TERMINAL_BUSY', 'the terminal is running another command');
    this.busy.add(ref.terminalId);
    let driver: TerminalDriver | undefined;
    try {
      const terminal = await this.db.withTenant(ref.tenantId, (tx) => tx.terminal.findUniqueOrThrow({ where: { id: ref.terminalId } }));
      const connection = terminal.connection as { kind: string; host?: string; port?: number };
      if (connection.kind !== 'tcp' || !connection.host || !connection.port) {
        throw new RunnerUnavailable('TERMINAL_OFFLINE', `the direct runner reaches tcp terminals only (got ${connection.kind})`);
      }
      const link = await this.connect(connection.host, connection.port);
      driver = createDriver({
        terminalRowId: terminal.id,
        protocol: terminal.protocol,
        dialect: terminal.dialect,
        terminalId: terminal.terminalId,
        merchantId: terminal.merchantId,
        department: terminal.department,
        credentials: null,
        link: async () => link,
        options: this.options.driverOptions,
      });
      await fn(driver, { operationId: ref.operationId, type: 'settlement' });
    } finally {
      this.busy.delete(ref.terminalId);
      await driver?.close().catch(() => undefined);
    }
  }

  private connect(host: string, port: number): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const socket = new Socket();
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RunnerUnavailable('TERMINAL_OFFLINE', `no connection to ${host}:${port}`));
      }, this.options.connectTimeoutMs ?? 2000);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(new RunnerUnavailable('TERMINAL_OFFLINE', `terminal unreachable: ${error.message}`));
      });
      socket.connect(port, host, () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.on('error', () => undefined);
        resolve(socket);
      });
    });
  }

  private async persist(ref: SettlementOperationRef, outcome: OperationOutcome): Promise<void> {
    await this.db.withTenant(ref.tenantId, (tx) =>
      tx.terminalOperation.update({
        where: { id: ref.operationId },
        data: {
          state: outcome.state.toUpperCase() as 'APPROVED' | 'DECLINED' | 'CANCELED' | 'FAILED' | 'UNKNOWN',
          stateReason: outcome.reason ?? null,
          responseCode: outcome.responseCode ?? null,
          responseMessage: outcome.responseMessage ?? null,
          receipt: (outcome.receipt ?? undefined) as never,
          // Same shape as the connector's executor (libs/operations records.ts).
          result: { amount: outcome.amount ?? null, data: outcome.data ?? null } as never,
          ...(outcome.protocolRefs ? { protocolRefs: outcome.protocolRefs as never } : {}),
          completedAt: outcome.state === 'unknown' ? null : new Date(),
        },
      }),
    );
  }
}
