import { createServer, type Server, type Socket } from 'node:net';

import {
  ERROR_CODES,
  FrameDecoder,
  INTERRUPTIBLE_STATUSES,
  SsiEcrError,
  decodeRequest,
  encodeMessage,
  encodeReportParams,
  encodeResponse,
  encodeTransactionResultParams,
  isFinancialMethod,
  maskPan,
  parseJsonData,
  type FinancialMethod,
  type JsonObject,
  type ReportTotals,
  type SsiRequest,
  type SsiResponse,
  type TerminalErrorCode,
  type TerminalReport,
  type TerminalStatus,
  type TransactionResult,
} from '@payorch/ssi-ecr';

import { PhaseHold } from '../phase-hold';
import { DEFAULT_AMOUNT_LIMIT, REPORT_SCRIPT, scenarioFor, type Scenario } from './scenarios';

/** What survives a reboot (spec 5.5.1: GetLastResult "is kept after the terminal restarts"). */
export interface SimulatorPersistentState {
  lastResult?: TransactionResult;
  lastReceipt?: string;
  lastReport?: TerminalReport;
  lastReportReceipt?: string;
  batch: BatchEntry[];
  batchNumber: number;
  sequence: number;
  resultsByUid: Record<string, TransactionResult>;
}

export interface BatchEntry {
  readonly method: FinancialMethod;
  readonly amount: number;
  readonly invoiceNum: string;
  readonly rrn: string;
  readonly authCode: string;
  readonly date: string;
  readonly time: string;
  readonly panMasked: string;
  /** CashBack: the cash handed out, inside `amount` (not a card sale, spec 5.2.4). */
  readonly cashAmount?: number;
  voided: boolean;
}

export interface SsiEcrSimulatorOptions {
  readonly host?: string;
  /** 0 = ephemeral (tests); the real default is 3000 (spec 1.1). */
  readonly port?: number;
  readonly os?: 'android' | 'linux';
  readonly merchants?: readonly string[];
  /** `per-poll`: each GetStatus advances one step (deterministic). `timed`: one step every `stepMs`. */
  readonly advance?: { readonly mode: 'per-poll' } | { readonly mode: 'timed'; readonly stepMs: number };
  /** Later revision: transactionUid + GetResultByUid + GetMerchantListDetailed. */
  readonly supportsTransactionUid?: boolean;
  /** The spec spells results both ways; `hyphen` sends `APPROVED-ONLINE` like example 5.5.1. */
  readonly resultSpelling?: 'underscore' | 'hyphen';
  readonly amountLimit?: number;
  /** Persistent state, e.g. loaded from a file by the CLI. */
  readonly state?: SimulatorPersistentState;
  readonly now?: () => Date;
}

interface ActiveOperation {
  readonly request: SsiRequest;
  readonly scenario: Scenario;
  readonly kind: 'financial' | 'report';
  readonly transactionUid?: string;
  index: number;
  reported: boolean;
  amount?: number;
  /** Two-step: waiting in S08 for step 2. */
  awaitingStep2: boolean;
}

const CARD_PAN = '4402722218390184';

export function emptySimulatorState(): SimulatorPersistentState {
  return { batch: [], batchNumber: 1, sequence: 0, resultsByUid: {} };
}

/**
 * An SSI ECR terminal (spec rev. 1.1.10 + later-revision extensions) listening on TCP. Test tool:
 * outcomes are deterministic (scenarios.ts / README.md).
 */
export class SsiEcrSimulator {
  private heldAt: TerminalStatus | undefined;
  /** Methods received, in order (diagnostics and assertions). */
  readonly received: string[] = [];
  readonly persistent: SimulatorPersistentState;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private active: ActiveOperation | undefined;
  private busyCount = 0;
  private needsZReport = false;
  /** Test control: the next Z reports answer response code 95 (totals differ from the host's) with the real totals; the batch closes all the same. */
  zReportMismatch = false;
  private timer: NodeJS.Timeout | undefined;
  /**
   * Test control: hold financial requests at a phase (phase-hold.ts): `received` = the request is not read yet
   * (what follows on that connection waits; a connection that drops loses it), `card` = the operation stays in
   * S02, `answer` = the operation is decided and in the batch, but the terminal still reports S07 (printing)
   * and GetLastResult answers E06 until release.
   */
  readonly hold = new PhaseHold();
  /** The finished operation whose result is held (hold `answer`). */
  private resultHeld = false;
  private readonly options: Required<Omit<SsiEcrSimulatorOptions, 'state'>>;

  constructor(options: SsiEcrSimulatorOptions = {}) {
    this.options = {
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      os: options.os ?? 'android',
      merchants: options.merchants ?? ['000000060007176', 'EXIM CASH      '],
      advance: options.advance ?? { mode: 'per-poll' },
      supportsTransactionUid: options.supportsTransactionUid ?? false,
      resultSpelling: options.resultSpelling ?? 'underscore',
      amountLimit: options.amountLimit ?? DEFAULT_AMOUNT_LIMIT,
      now: options.now ?? (() => new Date()),
    };
    this.persistent = options.state ?? emptySimulatorState();
  }

  async start(): Promise<{ host: string; port: number }> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    return { host: this.options.host, port: this.port };
  }

  get port(): number {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  async stop(): Promise<void> {
    this.stopTimer();
    this.dropConnections();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Test control: a running operation that reaches `status` stays there (polls report it, timed steps
   * wait) until `holdAt(undefined)`; the script then goes on. Interrupt and reboot still act on it.
   * Lets a test act "while the terminal waits for the card" without racing the script.
   */
  holdAt(status: TerminalStatus | undefined): void {
    this.heldAt = status;
  }

  /** Current status as GetStatus would report it, without advancing. */
  get status(): TerminalStatus {
    if (this.answerHeld) return 'S07';
    if (this.active) return this.active.awaitingStep2 ? 'S08' : (this.active.scenario.script[this.active.index] ?? 'S01');
    return this.needsZReport ? 'S06' : 'S00';
  }

  /** Closes every client connection; a running operation continues. */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /**
   * Power cycle: connections drop; a running operation ends as CANCELLED before the bank was contacted
   * (S01–S03, S08) or with its scenario outcome after it (S04+). The last result persists.
   */
  reboot(): void {
    this.dropConnections();
    const op = this.active;
    if (op?.kind === 'financial') {
      const beforeBank = ['S01', 'S02', 'S03', 'S08'].includes(this.status);
      this.finishFinancial(op, beforeBank ? { result: 'CANCELLED', errorCode: 'E12' } : undefined);
    } else if (op) {
      this.active = undefined;
    }
    this.stopTimer();
  }

  /** The next `count` requests that need an idle terminal get E06, as if another ECR were paying. */
  setBusy(count: number): void {
    this.busyCount = count;
  }

  /** S06: every financial request is refused with E15 until a ZReport. */
  setNeedsZReport(needed: boolean): void {
    this.needsZReport = needed;
  }

  private get answerHeld(): boolean {
    return this.resultHeld && this.hold.parked('answer');
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const decoder = new FrameDecoder();
    // Frames read while a financial request is held unread (hold `received`), in order.
    const unread: Uint8Array[] = [];
    const gone = new AbortController();
    const handle = (data: Uint8Array): void => {
      if (unread.length > 0) {
        unread.push(data);
        return;
      }
      if (this.hold.holding === 'received' && isFinancialFrame(data)) {
        unread.push(data);
        void this.hold.pass('received', gone.signal).then((go) => {
          const frames = unread.splice(0);
          // A connection that dropped while the bytes sat unread took them with it.
          if (go && !socket.destroyed) frames.forEach(handle);
        });
        return;
      }
      this.send(socket, this.handleFrame(data));
    };
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        if (event.kind === 'garbage') {
          const reply = event.error.reply;
          if (reply && reply !== 'drop') this.send(socket, errorResponse('Unknown', reply, { details: event.error.message }));
          continue;
        }
        handle(event.frame.data);
      }
    });
    socket.on('close', () => {
      this.sockets.delete(socket);
      gone.abort();
    });
    socket.on('error', () => this.sockets.delete(socket));
  }

  private send(socket: Socket, response: SsiResponse): void {
    if (!socket.destroyed) socket.write(encodeMessage(encodeResponse(response)));
  }

  private handleFrame(data: Uint8Array): SsiResponse {
    let message: JsonObject;
    try {
      message = parseJsonData(data);
    } catch (error) {
      return errorFromDecode('Unknown', error);
    }
    const method = typeof message.method === 'string' ? message.method : 'Unknown';
    this.received.push(method);
    let request: SsiRequest;
    try {
      request = decodeRequest(message);
    } catch (error) {
      return errorFromDecode(method, error);
    }
    return this.dispatch(request);
  }

  private dispatch(request: SsiRequest): SsiResponse {
    const { method } = request;
    const android = this.options.os === 'android';
    const uidExt = this.options.supportsTransactionUid;
    switch (method) {
      case 'GetStatus':
        return ok(method, { status: this.poll() });
      case 'Interrupt':
        return this.interrupt();
      case 'Restart':
        setImmediate(() => this.reboot());
        return { ...ok(method), status: 'S00' };
      case 'PingDevice': // spec 5.5.3: any status
        return ok(method, { params: {} });
      case 'GetResultByUid':
        if (!uidExt) return errorResponse(method, 'E05');
        return this.resultByUid(request.params.transactionUid);
      case 'GetMerchantListDetailed':
        if (!uidExt) return errorResponse(method, 'E05');
        return ok(method, { params: { merchantList: this.options.merchants.map((merchantId) => ({ merchantId, terminalId: 'SSI00001' })) } });
      case 'GetLastResult':
        // Later revision: readable in S08 to see FIRST_STEP_COMPLETED.
        if ((this.active && !this.active.awaitingStep2) || this.answerHeld) return errorResponse(method, 'E06');
        return this.lastResultResponse(method, this.persistent.lastResult);
      default:
        break;
    }
    if (this.active && !(this.active.awaitingStep2 && 'step' in request && request.step === 2 && request.method === this.active.request.method)) {
      return errorResponse(method, 'E06');
    }
    if (this.answerHeld) return errorResponse(method, 'E06');
    if (this.busyCount > 0) {
      this.busyCount--;
      return errorResponse(method, 'E06');
    }
    switch (method) {
      case 'GetLastReceipt':
        return ok(method, { params: { receipt: this.persistent.lastReceipt ?? '' } });
      case 'GetLastReport':
        return this.persistent.lastReport
          ? { ...ok(method, { params: encodeReportParams(this.persistent.lastReport) }), error: this.persistent.lastReport.error }
          : errorResponse(method, 'E20');
      case 'GetLastReportReceipt':
        return ok(method, { params: { receipt: this.persistent.lastReportReceipt ?? '' } });
      case 'GetMerchantList':
        return ok(method, { params: { merchantCount: this.options.merchants.length, merchantList: [...this.options.merchants] } });
      case 'GetTerminalInfo':
        return ok(method, { params: android ? ANDROID_INFO : LINUX_INFO });
      case 'RestartPaymentApp':
        if (!android) return errorResponse(method, 'E05');
        return ok(method, { params: {} });
      case 'PrintXml':
      case 'PrintPdfUrl':
        if (!android) return errorResponse(method, 'E05');
        return ok(method, { params: {} });
      case 'ZReport':
      case 'XReport':
        return this.startReport(request as SsiRequest<'ZReport' | 'XReport'>);
      default:
        return this.startFinancial(request as SsiRequest<FinancialMethod>);
    }
  }

  private startFinancial(request: SsiRequest<FinancialMethod>): SsiResponse {
    const method = request.method;
    const params = request.params as Record<string, unknown>;
    if (this.active?.awaitingStep2) return this.secondStep(request);
    if (typeof params.merchantId === 'string' && !this.options.merchants.includes(params.merchantId)) return errorResponse(method, 'E07');
    if (this.needsZReport) return errorResponse(method, 'E15');
    const amount = typeof params.transAmount === 'number' ? params.transAmount : undefined;
    if (amount !== undefined && amount > this.options.amountLimit) return errorResponse(method, 'E19');
    const scenario = method === 'Purchase' || amount !== undefined ? scenarioFor(amount) : scenarioFor(undefined);
    if (scenario.ackError) return errorResponse(method, scenario.ackError);
    const uid = this.options.supportsTransactionUid && typeof params.transactionUid === 'string' ? params.transactionUid : undefined;
    this.begin({
      request,
      scenario: scenario.twoStep && method !== 'Purchase' ? scenarioFor(undefined) : scenario,
      kind: 'financial',
      ...(uid ? { transactionUid: uid } : {}),
      index: 0,
      reported: false,
      ...(amount !== undefined ? { amount } : {}),
      awaitingStep2: false,
    });
    return ok(method, { params: {} });
  }

  private secondStep(request: SsiRequest<FinancialMethod>): SsiResponse {
    const op = this.active!;
    const amount = (request.params as { transAmount?: number }).transAmount;
    if (amount !== undefined) op.amount = amount;
    op.awaitingStep2 = false;
    return ok(request.method, { params: {} });
  }

  private startReport(request: SsiRequest<'ZReport' | 'XReport'>): SsiResponse {
    const scenario: Scenario = { name: request.method, script: REPORT_SCRIPT };
    this.begin({ request, scenario, kind: 'report', index: 0, reported: false, awaitingStep2: false });
    return ok(request.method, { params: {} });
  }

  private begin(op: ActiveOperation): void {
    this.active = op;
    this.resultHeld = false;
    if (this.options.advance.mode === 'timed') {
      const stepMs = this.options.advance.stepMs;
      this.timer = setInterval(() => this.step(), stepMs);
    }
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** GetStatus: per-poll mode reports the current step, then advances on the next poll. */
  private poll(): TerminalStatus {
    const op = this.active;
    if (op && this.options.advance.mode === 'per-poll') {
      if (op.reported) this.step();
      else op.reported = true;
    }
    return this.status;
  }

  private step(): void {
    const op = this.active;
    if (!op || op.awaitingStep2) return;
    if (this.heldAt !== undefined && this.status === this.heldAt) return;
    if (op.kind === 'financial' && this.status === 'S02' && this.hold.park('card')) return;
    op.index++;
    if (op.index >= op.scenario.script.length) {
      if (op.kind === 'financial') {
        this.finishFinancial(op);
        this.resultHeld = this.hold.park('answer');
      } else this.finishReport(op);
      return;
    }
    const status = op.scenario.script[op.index];
    if (status === 'S08' && op.scenario.twoStep) {
      op.awaitingStep2 = true;
      this.persistent.lastResult = this.buildResult(op, { result: 'FIRST_STEP_COMPLETED' });
    }
    if (status === op.scenario.dropConnectionsAt) setImmediate(() => this.dropConnections());
  }

  private interrupt(): SsiResponse {
    const op = this.active;
    // Spec 5.4.2: only in S02 / S03 (S08 in later revisions); otherwise E08.
    if (!op || op.kind !== 'financial' || !INTERRUPTIBLE_STATUSES.includes(this.status)) return errorResponse('Interrupt', 'E08');
    this.finishFinancial(op, { result: 'CANCELLED', errorCode: 'E12' });
    return ok('Interrupt', { params: {} });
  }

  private finishFinancial(op: ActiveOperation, override?: { result: 'CANCELLED'; errorCode: TerminalErrorCode }): void {
    this.stopTimer();
    this.active = undefined;
    const result = this.buildResult(op, override);
    // Spec 5.1: every accepted financial request overwrites the GetLastResult buffer.
    this.persistent.lastResult = result;
    this.persistent.lastReceipt = receiptText(result);
    if (op.transactionUid) this.persistent.resultsByUid[op.transactionUid] = result;
    if (!result.error) this.record(op, result);
  }

  private buildResult(op: ActiveOperation, override?: { result: 'CANCELLED' | 'FIRST_STEP_COMPLETED'; errorCode?: TerminalErrorCode }): TransactionResult {
    const method = op.request.method as FinancialMethod;
    const params = paramsOf(op.request);
    const seq = ++this.persistent.sequence;
    const now = this.options.now();
    const value = override?.result ?? op.scenario.result ?? 'APPROVED_ONLINE';
    const errorCode = override ? (override.errorCode ?? '') : (op.scenario.errorCode ?? '');
    const voidTarget = this.voidTarget(method, params);
    const failedVoid = voidTarget === null;
    const isError = errorCode !== '' || failedVoid;
    const approved = !isError && value !== 'FIRST_STEP_COMPLETED';
    const transAmount = method === 'Balance' ? 0 : method === 'Void' || method === 'VoidPreauth' ? (voidTarget?.amount ?? 0) : (op.amount ?? 0);
    const result: TransactionResult = {
      error: isError,
      errorCode: failedVoid ? 'E21' : errorCode,
      errorDescription: failedVoid ? ERROR_CODES.E21.description : errorCode ? ERROR_CODES[errorCode].description : '',
      originalTrnName: method,
      transactionResult: failedVoid ? 'FAILED' : value,
      transactionResultRaw: this.spell(failedVoid ? 'FAILED' : value),
      transAmount,
      transCurrency: typeof params.transCurrency === 'string' ? params.transCurrency : '980',
      invoiceNum: String(seq).padStart(6, '0'),
      date: `${pad(now.getUTCDate())}/${pad(now.getUTCMonth() + 1)}/${now.getUTCFullYear()}`,
      time: `${pad(now.getUTCHours())}:${pad(now.getUTCMinutes())}:${pad(now.getUTCSeconds())}`,
      bankName: 'SIM BANK',
      merchantId: typeof params.merchantId === 'string' ? params.merchantId : this.options.merchants[0],
      terminalId: 'SSI00001',
      panMasked: maskPan(CARD_PAN),
      posEntryMode: 'CONTACTLESS',
      binName: 'VISA',
      ...(approved ? { rrn: String(100000000000 + seq), authCode: `A${String(seq).padStart(5, '0')}` } : {}),
      ...(op.scenario.responseCode && !override ? { responseCode: op.scenario.responseCode } : {}),
      ...(method === 'Balance' && approved ? { balance: 123456 } : {}),
      ...(method === 'CashBack' && typeof params.cashAmount === 'number' ? { cashAmount: params.cashAmount } : {}),
      ...(method === 'SalePreauth' && typeof params.endAmount === 'number' ? { endAmount: params.endAmount } : {}),
      ...(failedVoid ? { errorDetails: 'original transaction not found' } : {}),
      ...(op.transactionUid ? { transactionUid: op.transactionUid } : {}),
    };
    return result;
  }

  /** Void/VoidPreauth/PartialVoid target: the batch entry, null if not found, undefined for other methods. */
  private voidTarget(method: FinancialMethod, params: Record<string, unknown>): BatchEntry | null | undefined {
    if (method !== 'Void' && method !== 'VoidPreauth' && method !== 'PartialVoid') return undefined;
    return this.persistent.batch.find((e) => e.invoiceNum === params.invoiceNum && !e.voided) ?? null;
  }

  private record(op: ActiveOperation, result: TransactionResult): void {
    const method = op.request.method as FinancialMethod;
    const params = paramsOf(op.request);
    const target = this.voidTarget(method, params);
    if (target && method !== 'PartialVoid') target.voided = true;
    const amount = method === 'SalePreauth' && typeof params.endAmount === 'number' ? params.endAmount : (result.transAmount ?? 0);
    this.persistent.batch.push({
      method,
      amount: method === 'PartialVoid' ? (op.amount ?? 0) : amount,
      invoiceNum: result.invoiceNum ?? '',
      rrn: result.rrn ?? '',
      authCode: result.authCode ?? '',
      date: result.date ?? '',
      time: result.time ?? '',
      panMasked: result.panMasked ?? '',
      ...(method === 'CashBack' && typeof params.cashAmount === 'number' ? { cashAmount: params.cashAmount } : {}),
      voided: false,
    });
  }

  private finishReport(op: ActiveOperation): void {
    this.stopTimer();
    this.active = undefined;
    const params = paramsOf(op.request) as { isDetailReport?: boolean };
    const batch = this.persistent.batch;
    // Spec 5.5.4: with response code 95 the totals are the real ones (every other error zeroes them).
    const mismatch = this.zReportMismatch && op.request.method === 'ZReport';
    const report: TerminalReport = {
      error: mismatch,
      errorCode: '',
      errorDescription: mismatch ? 'Reconciliation totals differ from the host' : '',
      totals: totalsOf(batch),
      isBatchEmpty: batch.length === 0,
      batchNumber: String(this.persistent.batchNumber),
      responseCode: mismatch ? '95' : '00',
      transactions: params.isDetailReport
        ? batch.map((e) => ({
            originalTrnName: e.method,
            transAmount: e.amount,
            invoiceNum: e.invoiceNum,
            rrn: e.rrn,
            authCode: e.authCode,
            date: e.date,
            time: e.time,
            panMasked: e.panMasked,
            responseCode: '00',
          }))
        : [],
    };
    this.persistent.lastReport = report;
    this.persistent.lastReportReceipt = `${op.request.method} #${report.batchNumber}\nsales: ${report.totals.saleCount} / ${report.totals.saleAmount}`;
    // Spec 5.3.1: Z report = reconciliation; the batch is closed.
    if (op.request.method === 'ZReport') {
      this.persistent.batch = [];
      this.persistent.batchNumber++;
      this.needsZReport = false;
    }
  }

  private resultByUid(uid: string): SsiResponse {
    const result = this.persistent.resultsByUid[uid];
    if (this.active?.transactionUid === uid && !this.active.awaitingStep2) return errorResponse('GetResultByUid', 'E06');
    return this.lastResultResponse('GetResultByUid', result);
  }

  private lastResultResponse(method: string, result: TransactionResult | undefined): SsiResponse {
    if (!result) return errorResponse(method, 'E20');
    return {
      method,
      error: result.error,
      errorCode: result.errorCode,
      errorDescription: result.errorDescription,
      params: encodeTransactionResultParams(result),
    };
  }

  private spell(value: string): string {
    return this.options.resultSpelling === 'hyphen' ? value.replace(/_/g, '-') : value;
  }
}

const pad = (n: number): string => String(n).padStart(2, '0');

function ok(method: string, extra: Partial<SsiResponse> = {}): SsiResponse {
  return { method, error: false, errorCode: '', errorDescription: '', ...extra };
}

function errorResponse(method: string, code: TerminalErrorCode, extra: Partial<SsiResponse> = {}): SsiResponse {
  return { method, error: true, errorCode: code, errorDescription: ERROR_CODES[code].description, ...extra };
}

/** Spec 5.1: decode failures become E0x answers; the E09 key goes in `errorParams`. */
function errorFromDecode(method: string, error: unknown): SsiResponse {
  if (error instanceof SsiEcrError && error.reply && error.reply !== 'drop') {
    return errorResponse(method, error.reply, {
      details: error.message,
      ...(error.reply === 'E09' && error.details.field ? { errorParams: error.details.field } : {}),
    });
  }
  return errorResponse(method, 'E00', { details: (error as Error).message });
}

function totalsOf(batch: readonly BatchEntry[]): ReportTotals {
  const totals = {
    saleCount: 0,
    saleAmount: 0,
    finAuthCount: 0,
    finAuthAmount: 0,
    refundCount: 0,
    refundAmount: 0,
    cashCount: 0,
    cashAmount: 0,
    paymentCount: 0,
    paymentAmount: 0,
    voidCount: 0,
    voidAmount: 0,
  };
  for (const e of batch) {
    const bucket = bucketOf(e.method);
    if (!bucket) continue;
    totals[`${bucket}Count`]++;
    // A CashBack's sale is its card part: the cash handed out is not a sale.
    totals[`${bucket}Amount`] += e.amount - (e.cashAmount ?? 0);
  }
  return totals;
}

function bucketOf(method: FinancialMethod): 'sale' | 'finAuth' | 'refund' | 'cash' | 'payment' | 'void' | undefined {
  switch (method) {
    case 'Purchase':
    case 'CashBack':
      return 'sale';
    case 'SalePreauth':
      return 'finAuth';
    case 'Refund':
      return 'refund';
    case 'Cash':
      return 'cash';
    case 'Deposit':
      return 'payment';
    case 'Void':
    case 'PartialVoid':
      return 'void';
    // A released hold never reached the totals, so its release (VoidPreauth) is not a void of anything in them.
    case 'VoidPreauth':
    case 'Preauthorization':
    case 'Balance':
    case 'Echo':
      return undefined;
  }
}

function receiptText(result: TransactionResult): string {
  return [
    result.bankName,
    result.originalTrnName,
    `${result.transAmount ?? 0} ${result.transCurrency ?? ''}`,
    result.panMasked,
    result.transactionResultRaw,
    `#${result.invoiceNum}`,
  ].join('\n');
}

/** A frame whose method is financial (Purchase, Refund, …); anything unreadable is not. */
function isFinancialFrame(data: Uint8Array): boolean {
  try {
    const method = parseJsonData(data).method;
    return typeof method === 'string' && isFinancialMethod(method);
  } catch {
    return false;
  }
}

function paramsOf(request: SsiRequest): Record<string, unknown> {
  return ('params' in request ? request.params : {}) as Record<string, unknown>;
}

const ANDROID_INFO: JsonObject = {
  securityDriver: { name: 'ServiceVer', versionName: 'X990-V1.0.12(202111221449)' },
  terminalModel: 'Verifone X990',
  sdkVersion: 25,
  androidVersion: '7.1.2 (N_MR1)',
  serviceApps: [{ name: 'VFSystemService', packageName: 'com.vfi.smartpos.system_service', versionName: '1.11.2' }],
  currentApp: { name: 'SimBank', packageName: 'com.payorch.sim', versionName: '1.0.0' },
  terminalSerialNumber: 'SIM0000001',
  thirdPartyApps: [],
  rom: { name: 'ROM', versionName: 'SIM' },
  paymentApps: [{ name: 'SimBank', packageName: 'com.payorch.sim', versionName: '1.0.0' }],
  externalRegisterApps: [],
};

const LINUX_INFO: JsonObject = {
  model: 'SP880',
  boot_version: '01.00_00_000019',
  devcfg_version: 'SP880.3652010.014',
  os_version: '9.0.3.0_20231017',
  napi_api_version: 'NAPI_API_V2.7.0',
  pci_fw_version: 'D_01.00_9000300',
  pos_sn: 'SIM0000001',
};
