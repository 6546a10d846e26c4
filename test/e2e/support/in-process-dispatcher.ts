import { connect, type Socket } from 'node:net';

import { Database, type PublishedEvent } from '@payorch/db';
import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';
import { createDriver, type DriverOptions, type TerminalDriver } from '@payorch/drivers';
import { OperationCommandHandler, type TerminalCommandDispatcher } from '@payorch/operations';

interface Route {
  port: number;
  credentials?: Record<string, string>;
  options?: DriverOptions;
  timeZone?: string;
}

/**
 * Test tool, not production code: a TerminalCommandDispatcher that runs the OperationCommandHandler in
 * this process with a driver connected straight to a simulator over TCP (no agent, no connector, no bus).
 * Register each terminal's simulator port with `route(terminalId, …)`; unrouted terminals are offline.
 */
export class InProcessDispatcher implements TerminalCommandDispatcher {
  readonly db: Database;
  readonly handler: OperationCommandHandler;
  readonly commands: TerminalCommand[] = [];
  private readonly routes = new Map<string, Route>();
  private readonly drivers = new Map<string, TerminalDriver>();

  constructor(appUrl: string, onEvents?: (events: readonly PublishedEvent[]) => void) {
    // Like the connector: committed events are numbered, then handed to onEvents (Database onCommitted).
    this.db = Database.connect(appUrl, 3, { onCommitted: onEvents });
    this.handler = new OperationCommandHandler(this.db);
  }

  route(terminalId: string, route: Route): void {
    this.routes.set(terminalId, route);
  }

  /** Drops the driver of a terminal (as if the connector lost it); the next command opens a new one. */
  async forget(terminalId: string): Promise<void> {
    await this.drivers.get(terminalId)?.close();
    this.drivers.delete(terminalId);
  }

  async dispatch(command: TerminalCommand): Promise<TerminalCommandReply> {
    this.commands.push(command);
    const route = this.routes.get(command.terminalId);
    if (!route) return { ok: false, code: 'TERMINAL_OFFLINE', message: 'no simulator routed for this terminal' };
    const driver = await this.driverOf(command.tenantId, command.terminalId, route);
    if (!driver) return { ok: false, code: 'NOT_FOUND', message: `terminal ${command.terminalId} not found` };
    return this.handler.handle(command, driver);
  }

  async close(): Promise<void> {
    await Promise.all([...this.drivers.values()].map((d) => d.close()));
    await this.db.close();
  }

  private async driverOf(tenantId: string, terminalId: string, route: Route): Promise<TerminalDriver | undefined> {
    const existing = this.drivers.get(terminalId);
    if (existing) return existing;
    const terminal = await this.db.withTenant(tenantId, (tx) => tx.terminal.findUnique({ where: { id: terminalId } }));
    if (!terminal) return undefined;
    const driver = createDriver({
      terminalRowId: terminal.id,
      protocol: terminal.protocol,
      dialect: terminal.dialect,
      terminalId: terminal.terminalId,
      merchantId: terminal.merchantId,
      department: terminal.department,
      credentials: route.credentials ?? null,
      encryption: { enabled: terminal.encryptionEnabled },
      timeZone: route.timeZone ?? 'UTC',
      options: route.options,
      link: () =>
        new Promise<Socket>((resolve, reject) => {
          const socket = connect(route.port, '127.0.0.1');
          socket.once('connect', () => resolve(socket));
          socket.once('error', reject);
        }),
    });
    this.drivers.set(terminalId, driver);
    return driver;
  }
}
