import {
  duplexTransport,
  type FinancialMethod,
  type FinancialOperation,
  type OperationOutcome as SsiOutcome,
  type OperationTicket,
  type ReportMethod,
  SsiEcrClient,
  SsiEcrError,
  SsiEcrRunner,
  type SsiRequest,
  type StatusEvent,
  type TransactionResult,
} from '@payorch/ssi-ecr';

import { assertSupported, DriverError } from './capabilities';
import { FrameTap } from './frames';
import { ssiResult } from './result-codes';
import { compact, DriverLinks, errorMessage, failedBeforeSend, numericCurrency, READ_ONLY_TYPES, refString, requireAmount, requireOriginal } from './shared';
import type { CancelResult, DriverConfig, ExecuteHooks, OperationCommand, OperationOutcome, OperationProgress, ProtocolRefs, TerminalDriver } from './types';

const PHASE_TO_SUB_STATUS: Record<string, string> = {
  processing: 'processing',
  waiting_for_card: 'waiting_card',
  waiting_for_pin: 'waiting_pin',
  contacting_bank: 'connecting_host',
  printing: 'printing',
  take_card: 'take_card',
  waiting_for_second_step: 'waiting_second_step',
  z_report_required: 'z_report_required',
};

/**
 * SSI ECR JSON terminals. The runner's ticket (request, transactionUid, GetLastResult baseline) is what
 * `beforeSend` persists; `recover` hands it back to `runner.recover(ticket)`.
 */
export class SsiEcrDriver implements TerminalDriver {
  readonly protocol = 'SSI_ECR' as const;
  readonly device: string | undefined;
  private readonly client: SsiEcrClient;
  private readonly runner: SsiEcrRunner;
  private running: { operationId: string; operation?: FinancialOperation; sent: boolean } | undefined;
  /** Closing the driver ends its links and aborts the runner's polling (`signal`). */
  private readonly links: DriverLinks;
  private readonly frames = new FrameTap('SSI_ECR');

  constructor(private readonly config: DriverConfig) {
    this.device = config.device;
    const poll = config.options?.pollIntervalMs;
    this.links = new DriverLinks(config);
    this.client = new SsiEcrClient({
      connect: async () => this.frames.wrap(duplexTransport(await this.links.open())),
      minRequestGapMs: poll,
      responseTimeoutMs: 5_000,
    });
    this.runner = new SsiEcrRunner(this.client, {
      ...(poll === undefined ? {} : { pollBackoff: () => poll, busyBackoff: () => Math.max(poll, 1) }),
      ...(config.options?.commandTimeoutMs === undefined ? {} : { operationTimeoutMs: config.options.commandTimeoutMs }),
      ...(config.options?.reconnectWindowMs === undefined ? {} : { recoveryTimeoutMs: config.options.reconnectWindowMs }),
    });
  }

  async execute(command: OperationCommand, hooks: ExecuteHooks): Promise<OperationOutcome> {
    let request: SsiRequest<FinancialMethod> | SsiRequest<ReportMethod> | undefined;
    try {
      assertSupported('SSI_ECR', this.config.dialect, command.type);
      if (command.type === 'terminal_info') return await this.terminalInfoCommand(hooks);
      request = this.toRequest(command);
    } catch (error) {
      if (error instanceof DriverError) return { state: 'failed', reason: error.message };
      throw error;
    }
    if (this.running !== undefined) return { state: 'failed', reason: 'not sent: another command is running on this terminal' };
    this.running = { operationId: command.operationId, sent: false };
    const detachFrames = this.frames.attach(hooks);
    try {
      if (request.method === 'XReport' || request.method === 'ZReport') return await this.report(request as SsiRequest<ReportMethod>, hooks);
      const running = this.running;
      const operation = this.runner.start(request as SsiRequest<FinancialMethod>, {
        signal: this.links.signal,
        onStatus: (event) => hooks.onProgress(toProgress(event)),
        onSending: async (ticket) => {
          await hooks.beforeSend({ ticket: JSON.stringify(ticket) });
          running.sent = true;
        },
      });
      running.operation = operation;
      const outcome = await operation.outcome;
      if (!running.sent && outcome.kind === 'unknown') return failedBeforeSend(new Error(outcome.detail));
      return fromOutcome(outcome);
    } finally {
      detachFrames();
      this.running = undefined;
    }
  }

  async cancel(operationId: string): Promise<CancelResult> {
    const operation = this.running?.operationId === operationId ? this.running.operation : undefined;
    if (operation === undefined) return 'not_running';
    try {
      await operation.interrupt();
      return 'requested';
    } catch (error) {
      if (error instanceof SsiEcrError && error.code === 'INTERRUPT_NOT_ALLOWED') return 'too_late';
      throw error;
    }
  }

  /**
   * A financial operation is decided from its ticket. A report or GetTerminalInfo claim (`command`) has no evidence
   * to decide from: GetLastReport carries no request id, method or time, and a Z report of a batch that was just
   * X-reported reads exactly like that X report (docs/protocols/ssi-ecr.md, "Reports after a lost answer"). So a
   * command that changes the terminal (the close-day, a Z report) stays unknown for a human to resolve (`failed` would
   * make the settlement send a second close-day); a read (X report, terminal info) changes nothing: its lost answer is
   * `failed`, asked again at will, instead of an UNKNOWN that would keep new work off the terminal.
   */
  async recover(command: OperationCommand, refs: ProtocolRefs): Promise<OperationOutcome> {
    const raw = refString(refs, 'ticket');
    if (raw === undefined) {
      const claimed = refString(refs, 'command');
      if (claimed !== undefined && READ_ONLY_TYPES.has(command.type)) {
        return { state: 'failed', reason: `${claimed}: its answer was lost; it changes nothing on the terminal, ask again`, protocolRefs: refs };
      }
      if (claimed !== undefined) {
        return {
          state: 'unknown',
          reason: `${claimed} may have run: nothing on the terminal ties a result to this request (resolve by hand)`,
          protocolRefs: refs,
        };
      }
      return { state: 'failed', reason: 'no ticket was recorded: the command was never sent' };
    }
    let ticket: OperationTicket;
    try {
      ticket = JSON.parse(raw) as OperationTicket;
    } catch {
      return { state: 'unknown', reason: 'the recorded ticket is unreadable', protocolRefs: refs };
    }
    const outcome = await this.runner.recover(ticket, { signal: this.links.signal });
    return fromOutcome(outcome);
  }

  async terminalInfo(): Promise<Record<string, unknown>> {
    return { protocol: 'SSI_ECR', ...(await this.client.getTerminalInfo()) };
  }

  /**
   * Stops at once whatever runs: the link ends and the runner stops polling, so a running operation is
   * `unknown` now (recovered from its ticket on the next driver) instead of polling a dead link for the
   * whole recovery window while the terminal's queue waits behind it.
   */
  async close(): Promise<void> {
    this.links.close();
    this.client.close();
  }

  private async terminalInfoCommand(hooks: ExecuteHooks): Promise<OperationOutcome> {
    await hooks.beforeSend({ command: 'GetTerminalInfo' });
    const detachFrames = this.frames.attach(hooks);
    try {
      return { state: 'approved', data: await this.terminalInfo() };
    } catch (error) {
      return { state: 'failed', reason: errorMessage(error) };
    } finally {
      detachFrames();
    }
  }

  private async report(request: SsiRequest<ReportMethod>, hooks: ExecuteHooks): Promise<OperationOutcome> {
    try {
      await hooks.beforeSend({ command: request.method });
    } catch (error) {
      return failedBeforeSend(error);
    }
    const outcome = await this.runner.runReport(request, { signal: this.links.signal, onStatus: (event) => hooks.onProgress(toProgress(event)) });
    switch (outcome.kind) {
      case 'completed':
        return { state: 'approved', data: { report: outcome.report } };
      case 'failed':
        return { state: 'declined', reason: outcome.report.errorDescription || 'reconciliation failed', data: { report: outcome.report } };
      case 'rejected':
        return { state: 'failed', reason: outcome.error.message };
      case 'unknown':
        return { state: 'unknown', reason: `${outcome.reason}: ${outcome.detail}`, protocolRefs: { command: request.method } };
    }
  }

  private toRequest(command: OperationCommand): SsiRequest<FinancialMethod> | SsiRequest<ReportMethod> {
    const merchant = this.config.merchantId ? { merchantId: this.config.merchantId } : {};
    const money = () => ({ transAmount: requireAmount(command), transCurrency: numericCurrency(command.currency) });
    switch (command.type) {
      case 'purchase':
        return { method: 'Purchase', params: { ...money(), ...merchant } };
      case 'purchase_with_cashback':
        return { method: 'CashBack', params: { ...money(), cashAmount: requireAmount(command, 'cashbackAmount'), ...merchant } };
      case 'refund':
        return { method: 'Refund', params: { ...money(), rrn: originalField(command, 'rrn'), ...merchant } };
      case 'void':
        return { method: 'Void', params: { invoiceNum: originalField(command, 'invoiceNum') } };
      case 'partial_void':
        return { method: 'PartialVoid', params: { invoiceNum: originalField(command, 'invoiceNum'), transAmount: requireAmount(command) } };
      case 'preauth':
        return { method: 'Preauthorization', params: { ...money(), ...merchant } };
      case 'preauth_capture': {
        const original = requireOriginal(command);
        if (original.amount === undefined) throw new DriverError('INVALID_COMMAND', 'preauth_capture needs the held amount of the preauthorisation');
        return {
          method: 'SalePreauth',
          params: {
            transAmount: original.amount,
            endAmount: requireAmount(command),
            transCurrency: numericCurrency(command.currency),
            rrn: originalField(command, 'rrn'),
            authCode: originalField(command, 'approvalCode'),
            ...merchant,
          },
        };
      }
      case 'preauth_cancel':
        return { method: 'VoidPreauth', params: { invoiceNum: originalField(command, 'invoiceNum') } };
      case 'cash_withdrawal':
        return { method: 'Cash', params: { ...money(), ...merchant } };
      case 'cash_deposit':
        return { method: 'Deposit', params: { ...money(), ...merchant } };
      case 'balance_inquiry':
        return { method: 'Balance', params: { transCurrency: numericCurrency(command.currency), ...merchant } };
      case 'echo':
        return { method: 'Echo', params: { ...merchant } };
      case 'report_x':
        return { method: 'XReport', params: { ...merchant } };
      case 'report_z':
      case 'settlement':
        return { method: 'ZReport', params: { ...merchant } };
      default:
        throw new DriverError('UNSUPPORTED_OPERATION', `SSI_ECR does not support operation type "${command.type}"`);
    }
  }
}

function originalField(command: OperationCommand, field: 'rrn' | 'invoiceNum' | 'approvalCode'): string {
  const original = requireOriginal(command);
  const value =
    field === 'rrn'
      ? (original.rrn ?? refString(original.protocolRefs, 'rrn'))
      : field === 'approvalCode'
        ? (original.approvalCode ?? refString(original.protocolRefs, 'authCode'))
        : refString(original.protocolRefs, 'invoiceNum');
  if (value === undefined) throw new DriverError('INVALID_COMMAND', `${command.type} needs the ${field} of the original operation`, { field: 'original' });
  return value;
}

function toProgress(event: StatusEvent): OperationProgress {
  return { kind: 'status', subStatus: PHASE_TO_SUB_STATUS[event.phase] ?? event.phase, text: event.description };
}

function fromOutcome(outcome: SsiOutcome): OperationOutcome {
  switch (outcome.kind) {
    case 'approved':
    case 'declined':
    case 'cancelled':
      return fromResult(outcome.kind === 'cancelled' ? 'canceled' : outcome.kind, outcome.result, outcome.ticket);
    case 'rejected':
      if (outcome.error.code === 'ABORTED') return failedBeforeSend(outcome.error);
      // A request lost unread (issue 15): proven never executed, so nothing was charged.
      if (outcome.error.code === 'NOT_EXECUTED') return { state: 'failed', reason: `NOT_EXECUTED: ${outcome.error.message}` };
      return compact({
        state: 'failed' as const,
        reason: `terminal refused the request: ${outcome.error.message}`,
        reasonCode: ssiResult(undefined, outcome.error.details.terminalErrorCode)?.reasonCode ?? 'invalid_request',
        responseCode: outcome.error.details.terminalErrorCode,
      });
    case 'unknown':
      return {
        state: 'unknown',
        reason: `${outcome.reason}: ${outcome.detail}`,
        protocolRefs: { ticket: JSON.stringify(outcome.ticket) },
      };
  }
}

function fromResult(kind: 'approved' | 'declined' | 'canceled', result: TransactionResult, ticket: OperationTicket): OperationOutcome {
  // The SSI result-code table decides the state of a non-approved result (transactionResult, else errorCode).
  const row = kind === 'approved' ? undefined : ssiResult(result.transactionResult, result.errorCode || undefined);
  const state = row?.state ?? kind;
  const fields = compact({
    method: result.originalTrnName,
    transactionResult: result.transactionResult ?? result.transactionResultRaw,
    invoiceNum: result.invoiceNum,
    date: result.date,
    time: result.time,
    terminalId: result.terminalId,
    merchantId: result.merchantId,
    bankName: result.bankName,
    posEntryMode: result.posEntryMode,
  });
  const text = [
    result.bankName,
    `${result.originalTrnName ?? ''} ${result.transactionResult ?? ''}`.trim(),
    result.transAmount === undefined ? undefined : `AMOUNT ${result.transAmount}`,
    result.panMasked ? `CARD ${result.panMasked}` : undefined,
    result.rrn ? `RRN ${result.rrn}` : undefined,
    result.authCode ? `AUTH ${result.authCode}` : undefined,
    result.invoiceNum ? `INVOICE ${result.invoiceNum}` : undefined,
  ].filter((l): l is string => l !== undefined && l !== '');
  return compact({
    state,
    reason: state === 'approved' ? undefined : row?.message || result.errorDescription || result.transactionResult || state,
    reasonCode: kind === 'approved' ? 'approved' : row?.reasonCode,
    responseCode: result.responseCode ?? (result.errorCode || undefined),
    responseMessage: result.errorDescription || undefined,
    maskedPan: result.panMasked,
    rrn: result.rrn,
    approvalCode: result.authCode,
    amount: result.transAmount,
    protocolRefs: compact({
      ticket: JSON.stringify(ticket),
      transactionUid: ticket.transactionUid,
      invoiceNum: result.invoiceNum,
      rrn: result.rrn,
      authCode: result.authCode,
    }),
    receipt: { text: text.join('\n'), fields },
    data: result.balance === undefined ? undefined : { balance: result.balance },
  });
}
