import { PayorchError } from '@payorch/domain';

/** The settlement operation to run: a TerminalOperation of type SETTLEMENT created PENDING by the worker. */
export interface SettlementOperationRef {
  tenantId: string;
  terminalId: string;
  operationId: string;
}

/**
 * How the worker gets a terminal to close its day. The operation's state lives in PostgreSQL and is
 * owned by the executor (the device connector's OperationExecutor in production): PENDING → SENT
 * (persisted before a byte is sent) → APPROVED | DECLINED | FAILED | UNKNOWN, with the driver's
 * outcome stored on the row (responseCode, receipt.text, result = OperationOutcome.data).
 */
export interface SettlementRunner {
  /**
   * Executes the PENDING operation at most once. Rejects with {@link RunnerUnavailable} when nothing
   * was sent (terminal offline or busy: the operation stays PENDING); any other return leaves the
   * row's state as the truth (possibly UNKNOWN).
   */
  execute(ref: SettlementOperationRef): Promise<void>;
  /** Decides the outcome of an operation left SENT / IN_PROGRESS / UNKNOWN (never sends the close-day again). */
  recover(ref: SettlementOperationRef): Promise<void>;
  /** Releases connections (called on shutdown). */
  close?(): Promise<void>;
}

export type RunnerUnavailableCode = 'TERMINAL_OFFLINE' | 'TERMINAL_BUSY' | 'TIMEOUT';

/** Nothing was sent (offline, busy) or no answer came (timeout): retry later with backoff. */
export class RunnerUnavailable extends PayorchError<RunnerUnavailableCode> {}

export const SETTLEMENT_RUNNER = Symbol('SETTLEMENT_RUNNER');
