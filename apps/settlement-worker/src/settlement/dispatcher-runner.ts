import type { TerminalCommandDispatcher, TerminalCommandReply } from '@payorch/domain';

import { RunnerUnavailable, type SettlementOperationRef, type SettlementRunner } from './settlement-runner';

/**
 * Production runner: the settlement is an operation like any other, executed by the connector
 * instance that holds the terminal's agent (one command at a time per terminal).
 */
export class DispatcherSettlementRunner implements SettlementRunner {
  constructor(
    private readonly dispatcher: TerminalCommandDispatcher,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {}

  close(): Promise<void> {
    return this.onClose();
  }

  async execute(ref: SettlementOperationRef): Promise<void> {
    check(await this.dispatcher.dispatch({ kind: 'operation.execute', ...ref }));
  }

  async recover(ref: SettlementOperationRef): Promise<void> {
    check(await this.dispatcher.dispatch({ kind: 'operation.recover', ...ref }));
  }
}

function check(reply: TerminalCommandReply): void {
  if (reply.ok) return;
  switch (reply.code) {
    case 'TERMINAL_OFFLINE':
    case 'TERMINAL_BUSY':
    case 'TIMEOUT':
      throw new RunnerUnavailable(reply.code, reply.message);
    case 'TOO_LATE':
    case 'NOT_FOUND':
    case 'INTERNAL':
      // The row's state decides what happens next (the settlement service reads it after this call).
      return;
  }
}
