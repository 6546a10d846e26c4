import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

import type { Database } from '@payorch/db';
import { createDriver, type DriverOptions, type TerminalDriver } from '@payorch/drivers';
import { markStuckUnknown, OperationExecutor, recoverOperation } from '@payorch/operations';

import { RunnerUnavailable, type SettlementOperationRef, type SettlementRunner } from '../settlement-runner';

export interface DriverRunnerOptions {
  driverOptions?: DriverOptions;
  /** TCP connect timeout to the terminal. Default 2 s. */
  connectTimeoutMs?: number;
  /**
   * Test fault: after the terminal answered, neither persist the outcome nor return (the process
   * "dies" between sending the close-day and recording its answer). The row stays SENT / IN_PROGRESS.
   */
  hangAfterSend?: (ref: SettlementOperationRef) => boolean;
  /** Terminal credentials handed to the driver (JPAY admin password); production decrypts the terminal's own. */
  credentials?: Record<string, string> | null;
}

/**
 * TEST TOOL (int and e2e tests; production code never imports `testing/`): runs the settlement operation
 * in process with @payorch/drivers over a direct TCP link (terminal connection `{kind:'tcp', host, port}`),
 * through the same OperationExecutor as the device connector — so every state change goes through the
 * operation owner (`transitionOperation`) with its OperationEvent and DomainEvent. In production terminals
 * sit behind agents and DispatcherSettlementRunner sends the operation through the connector. One command
 * at a time per terminal (in this process): a second one is TERMINAL_BUSY.
 */
export class DriverSettlementRunner implements SettlementRunner {
  private readonly busy = new Set<string>();
  private readonly executor: OperationExecutor;

  constructor(
    private readonly db: Database,
    private readonly options: DriverRunnerOptions = {},
  ) {
    this.executor = new OperationExecutor(db);
  }

  execute(ref: SettlementOperationRef): Promise<void> {
    return this.exclusive(ref, async (driver) => {
      // The row's state is the truth afterwards (the settlement service reads it).
      await this.executor.execute(ref, this.options.hangAfterSend ? this.hanging(ref, driver) : driver);
    });
  }

  /** Never sends the close-day again: a row left SENT / IN_PROGRESS by a dead runner goes UNKNOWN first, then the terminal is asked. */
  recover(ref: SettlementOperationRef): Promise<void> {
    return this.exclusive(ref, async (driver) => {
      await this.db.withTenant(ref.tenantId, (tx) => markStuckUnknown(tx, ref.operationId, new Date(), 'its runner is gone; recovering', 'runner'));
      await recoverOperation(this.db, this.executor, driver, ref);
    });
  }

  /** The driver of the `hangAfterSend` fault: the answer is lost with the "process"; the terminal is free again. */
  private hanging(ref: SettlementOperationRef, driver: TerminalDriver): TerminalDriver {
    return {
      protocol: driver.protocol,
      cancel: (operationId) => driver.cancel(operationId),
      recover: (command, refs) => driver.recover(command, refs),
      terminalInfo: () => driver.terminalInfo(),
      close: () => driver.close(),
      execute: async (command, hooks) => {
        // Decided as the command goes out: an execution started under the fault loses its answer whenever that arrives.
        // (Asked after the answer, a test that lifted the fault once the terminal had the request — the "process" killed
        // meanwhile — raced the answer, and the dead worker's execution went on to complete the settlement.)
        const hangs = this.options.hangAfterSend?.(ref) ?? false;
        const outcome = await driver.execute(command, hooks);
        if (!hangs) return outcome;
        this.busy.delete(ref.terminalId);
        await driver.close();
        return new Promise<never>(() => undefined);
      },
    };
  }

  private async exclusive(ref: SettlementOperationRef, fn: (driver: TerminalDriver) => Promise<void>): Promise<void> {
    if (this.busy.has(ref.terminalId)) throw new RunnerUnavailable('TERMINAL_BUSY', 'the terminal is running another command');
    this.busy.add(ref.terminalId);
    let driver: TerminalDriver | undefined;
    try {
      const terminal = await this.db.withTenant(ref.tenantId, (tx) => tx.terminal.findUniqueOrThrow({ where: { id: ref.terminalId } }));
      const connection = terminal.connection as { kind: string; host?: string; port?: number };
      if (connection.kind !== 'tcp' || !connection.host || !connection.port) {
        throw new RunnerUnavailable('TERMINAL_OFFLINE', `the direct runner reaches tcp terminals only (got ${connection.kind})`);
      }
      // Offline is found out here, before the executor claims the operation: it stays PENDING for the retry.
      const first = await this.connect(connection.host, connection.port);
      // The first link is the one just opened; a driver that opens another session (JPAY: admin report, then the
      // transaction) gets a new connection each time.
      let opened = false;
      const host = connection.host;
      const port = connection.port;
      const link = async () => {
        if (!opened) {
          opened = true;
          return first;
        }
        return this.connect(host, port);
      };
      driver = createDriver({
        terminalRowId: terminal.id,
        protocol: terminal.protocol,
        dialect: terminal.dialect,
        terminalId: terminal.terminalId,
        merchantId: terminal.merchantId,
        department: terminal.department,
        credentials: this.options.credentials ?? null,
        link,
        options: this.options.driverOptions,
      });
      await fn(driver);
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
}
