import { createServer, type AddressInfo, type Server, Socket } from 'node:net';

import {
  type BankResultFields,
  decodeMessage,
  encodeMessageFrame,
  type ErrorResponse,
  FrameDecoder,
  isJoinprotoError,
  maskPan,
  type TerminalRequest,
  type TerminalResponse,
  type TillMessage,
  type TillRequest,
  type TillResponse,
} from '@payorch/joinproto';

import { PhaseHold } from '../phase-hold';
import { encodeHostMessage, type HostAnswer, readHostMessage } from './processing-host';
import { scenarioFor } from './scenarios';

export type ServiceResult = 'ok' | 'not ok' | 'bad format';

export interface TerminalSimulatorOptions {
  /** `online`: the terminal reaches its processing centre itself; `offline`: through the till (91–94). */
  readonly mode?: 'online' | 'offline';
  /** `host:port` of the processing centre (offline mode), as sent in DF22. */
  readonly processingHost?: string;
  /** The card "presented" to the terminal; only its masked form leaves the simulator. */
  readonly cardPan?: string;
  /** Ask the till to check the card (02) before a purchase (spec 5.2). */
  readonly cardCheckBeforePurchase?: boolean;
  /** How long the "card timeout" scenario waits before CANCELED. Default 100 ms. */
  readonly cardTimeoutMs?: number;
  /** Pause before a bank answer, the window for a 90 interrupt. Default 5 ms. */
  readonly processingDelayMs?: number;
  /** DF25 of each 93 receive. Default 256. */
  readonly receiveChunkBytes?: number;
  /** Card balance for 12 (minor units). */
  readonly balance?: number;
  /** Close day answers 915 (totals differ) instead of 000; the day is closed all the same (spec 5.6.2). */
  readonly closeDayMismatch?: boolean;
  /**
   * Layout of the close-day receipt (DF0A; the spec imposes none, 1.4.1): `lines` DEBIT/CREDIT/TOTAL in minor units,
   * `ru` ОПЛАТА/ВОЗВРАТ/ИТОГО in roubles, `spec` the spec's own example text `данные` (no totals). Default `lines`.
   */
  readonly closeDayReceipt?: CloseDayReceiptForm;
  /** Result of 10 / 11 (spec 4.6, 4.7). */
  readonly serviceResult?: ServiceResult;
  /** Fault hook: compute and keep the answer (95 can repeat it) but do not send it. */
  readonly dropResponse?: (request: TillRequest) => boolean;
  /** How long the terminal waits for the till's answers to its own requests. Default 5 s. */
  readonly requestTimeoutMs?: number;
  /**
   * A 90 while a command runs: `interrupt` it (spec 4.10.1, default), or `refuse` — answer `XX Cannot interrupt` and
   * let the command run on, as a terminal does once it is past the point where a command can be interrupted (its
   * host exchange). The spec documents only the idle refusal (4.10.2); the wording of this one is ours.
   */
  readonly interruptWhileRunning?: 'interrupt' | 'refuse';
}

export type CloseDayReceiptForm = 'lines' | 'ru' | 'spec';

export interface JournalEntry {
  readonly command: string;
  readonly id: string;
  readonly amount: number;
  readonly rrn?: string;
  readonly approved: boolean;
  readonly responseCode: string;
}

interface InFlight {
  readonly id: string;
  readonly abort: AbortController;
  /** The link the command came in on: only that link dropping aborts it. */
  readonly socket: Socket | undefined;
  /** Aborted when that link drops (also after the command finished: ends a hold of its answer). */
  readonly linkGone: AbortSignal;
}

type Answer = Omit<BankResultFields, 'id'>;

/** Commands that execute something on the terminal (what `hold` holds): the financial ones and the close-day. */
const EXECUTING: ReadonlySet<TillRequest['type']> = new Set([
  'PurchaseRequest',
  'PreauthRequest',
  'CompletionRequest',
  'CancelRequest',
  'RefundRequest',
  'CashAdvanceRequest',
  'CashDepositRequest',
  'CloseDayRequest',
]);

const MERCHANT_ID = '111122223333444';
const TERMINAL_ID = 'AB040000';
const LOG_TEXT = 'joinproto terminal simulator log\n'.repeat(8);

/**
 * A Joinproto POS terminal (spec 1): greets the till with 99, executes every till command (01–14, 90, 95, 96),
 * and, in offline mode, reaches its processing centre through the till (91–94). A test tool: outcomes are
 * deterministic by amount (see scenarios.ts / README.md).
 */
export class JoinprotoTerminalSimulator {
  readonly journal: JournalEntry[] = [];
  /** DF1A of every `XX` the till answered to the terminal's own requests (relay, card check). */
  readonly tillErrors: string[] = [];
  /** Count of terminal requests sent, by type (e.g. how many 93 chunks a relay took). */
  readonly sentRequests: Record<string, number> = {};
  private readonly options: Required<Omit<TerminalSimulatorOptions, 'dropResponse' | 'processingHost'>> &
    Pick<TerminalSimulatorOptions, 'dropResponse' | 'processingHost'>;
  private server: Server | undefined;
  private socket: Socket | undefined;
  private decoder = new FrameDecoder({ maxFrameBytes: 128 * 1024 });
  private readonly answers = new Map<string, Uint8Array>();
  private readonly pending = new Map<string, (message: TillResponse | ErrorResponse) => void>();
  /** Rejects every request still waiting for the till (close() must not leave their timers behind). */
  private readonly abandon = new Map<string, () => void>();
  /** Set by close(): a request made after it (a relay's CloseConnection as the exchange unwinds) fails at once. */
  private closed = false;
  private inFlight: InFlight | undefined;
  private nextRequestId = 900_000;
  private sequence = 0;
  /** DF12 of the current shift (batch); a close-day, on the till's command or on the terminal, ends it. */
  private shift = 1;
  /** Test control: the next close-days answer 915 (totals differ from the host's), and still close the day. */
  closeDayMismatch: boolean;
  /**
   * Test control: hold executing commands (financial, close-day) at a phase (phase-hold.ts): `received` = the
   * frame is read but not acted on (the rest of that link waits behind it; a link that drops loses it),
   * `card` = before the bank, for every command that goes to it (a link that drops cancels the command),
   * `answer` = decided and journaled, the answer
   * not yet written (a link that drops loses it; 95 repeats it).
   */
  readonly hold = new PhaseHold();
  /** Messages read on a link while an executing command is held unread at `received`. */
  private unread: { socket: Socket | undefined; messages: TillMessage[]; gone: AbortSignal } | undefined;
  /** Aborted when the current link drops. */
  private linkGone: AbortSignal = AbortSignal.abort();
  private greeted: Promise<void> = new Promise(() => undefined);
  private markGreeted: () => void = () => undefined;

  constructor(options: TerminalSimulatorOptions = {}) {
    this.options = {
      mode: options.mode ?? 'online',
      processingHost: options.processingHost,
      cardPan: options.cardPan ?? '5449661234562078',
      cardCheckBeforePurchase: options.cardCheckBeforePurchase ?? false,
      cardTimeoutMs: options.cardTimeoutMs ?? 100,
      processingDelayMs: options.processingDelayMs ?? 5,
      receiveChunkBytes: options.receiveChunkBytes ?? 256,
      balance: options.balance ?? 100_000,
      closeDayMismatch: options.closeDayMismatch ?? false,
      closeDayReceipt: options.closeDayReceipt ?? 'lines',
      serviceResult: options.serviceResult ?? 'ok',
      dropResponse: options.dropResponse,
      requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
      interruptWhileRunning: options.interruptWhileRunning ?? 'interrupt',
    };
    this.closeDayMismatch = this.options.closeDayMismatch;
    if (this.options.mode === 'offline' && this.options.processingHost === undefined) {
      throw new Error('offline mode needs processingHost');
    }
    this.resetGreeting();
  }

  /** Waits for a till to connect (the till dials the terminal). */
  async listen(port = 0, host = '127.0.0.1'): Promise<{ host: string; port: number }> {
    this.server = createServer((socket) => this.attach(socket));
    await new Promise<void>((resolve) => this.server?.listen(port, host, resolve));
    return { host, port: (this.server.address() as AddressInfo).port };
  }

  /** Dials a till that listens. */
  async connect(port: number, host = '127.0.0.1'): Promise<void> {
    const socket = new Socket();
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(port, host, () => {
        socket.removeListener('error', reject);
        resolve();
      });
    });
    this.attach(socket);
  }

  /** DF01 of the till command being executed (waiting for the card, the host…), if any. */
  get commandInFlight(): string | undefined {
    return this.inFlight?.id;
  }

  /** Resolves once the till has answered the greeting echo (spec 1: the terminal then waits for commands). */
  ready(): Promise<void> {
    return this.greeted;
  }

  /** Drops the link to the till (the server keeps listening). */
  disconnect(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.inFlight?.abort.abort();
    for (const abandon of [...this.abandon.values()]) abandon();
    this.disconnect();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private resetGreeting(): void {
    this.greeted = new Promise((resolve) => (this.markGreeted = resolve));
  }

  private attach(socket: Socket): void {
    this.socket?.destroy();
    this.socket = socket;
    const gone = new AbortController();
    this.linkGone = gone.signal;
    this.decoder = new FrameDecoder({ maxFrameBytes: 128 * 1024 });
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      gone.abort();
      // A late 'close' of an earlier link must not abort a command that came in on a newer one.
      if (this.inFlight?.socket === socket) this.inFlight.abort.abort();
    });
    void this.request({ type: 'EchoRequest', id: this.allocateId() }).then(
      () => this.markGreeted(),
      () => undefined,
    );
  }

  private onData(chunk: Uint8Array): void {
    for (const event of this.decoder.push(chunk)) {
      if (event.kind === 'garbage') {
        this.send({ type: 'ErrorResponse', responseCode: 'XX', message: 'other err' });
        continue;
      }
      let message: TillMessage;
      try {
        message = decodeMessage(event.frame, 'till->terminal') as TillMessage;
      } catch (error) {
        if (!isJoinprotoError(error)) throw error;
        const { command, id } = error.details;
        this.send(
          error.reply === 'UNKNOWN COMMAND' && command !== undefined
            ? { type: 'ErrorResponse', command, id, responseCode: 'XX', message: 'UNKNOWN COMMAND' }
            : { type: 'ErrorResponse', responseCode: 'XX', message: 'other err' },
        );
        continue;
      }
      this.receive(message);
    }
  }

  /** A decoded message, unless an executing command sits unread before it on this link (hold at `received`). */
  private receive(message: TillMessage): void {
    if (this.unread) {
      this.unread.messages.push(message);
      return;
    }
    if (this.hold.holding === 'received' && EXECUTING.has(message.type as TillRequest['type'])) {
      const unread = { socket: this.socket, messages: [message], gone: this.linkGone };
      this.unread = unread;
      void this.hold.pass('received', unread.gone).then((go) => {
        if (this.unread === unread) this.unread = undefined;
        // A link that dropped while the bytes sat unread took them with it.
        if (go && unread.socket !== undefined && unread.socket === this.socket && !unread.socket.destroyed) unread.messages.forEach((m) => this.receive(m));
      });
      return;
    }
    this.onMessage(message);
  }

  private onMessage(message: TillMessage): void {
    if (message.type === 'ErrorResponse' || !message.type.endsWith('Request')) {
      const answer = message as TillResponse | ErrorResponse;
      const id = 'id' in answer ? answer.id : undefined;
      if (id !== undefined) this.pending.get(id)?.(answer);
      return;
    }
    const request = message as TillRequest;
    switch (request.type) {
      case 'InterruptRequest':
        this.interrupt(request.id);
        return;
      case 'RepeatRequest': {
        const stored = this.answers.get(request.id);
        if (stored) this.socket?.write(stored);
        else this.send({ type: 'RepeatResponse', responseCode: 'XX', message: 'FAILED' });
        return;
      }
      default:
        void this.run(request);
    }
  }

  /** [4.10] Interrupt aborts the command in flight, which then answers `XX CANCELED`. */
  private interrupt(id: string): void {
    if (this.inFlight === undefined) {
      this.send({ type: 'InterruptResponse', id, responseCode: 'XX', message: 'Nothing to interrupt' });
      return;
    }
    if (this.options.interruptWhileRunning === 'refuse') {
      this.send({ type: 'InterruptResponse', id, responseCode: 'XX', message: 'Cannot interrupt' });
      return;
    }
    this.send({ type: 'InterruptResponse', id });
    this.inFlight.abort.abort();
  }

  private async run(request: Exclude<TillRequest, { type: 'InterruptRequest' | 'RepeatRequest' }>): Promise<void> {
    const flight: InFlight = { id: request.id, abort: new AbortController(), socket: this.socket, linkGone: this.linkGone };
    this.inFlight = flight;
    let answer: TerminalResponse;
    try {
      answer = await this.execute(request, flight.abort.signal);
    } finally {
      if (this.inFlight === flight) this.inFlight = undefined;
    }
    const frame = encodeMessageFrame(answer, { dataChunkBytes: 64 });
    this.answers.set(request.id, frame);
    if (this.options.dropResponse?.(request)) return;
    // Held before the answer leaves (test hold); it only goes out on the link the command came in on: gone, the
    // answer is lost (95 repeats it).
    if (EXECUTING.has(request.type) && !(await this.hold.pass('answer', flight.linkGone))) return;
    this.socket?.write(frame);
  }

  private async execute(request: Exclude<TillRequest, { type: 'InterruptRequest' | 'RepeatRequest' }>, signal: AbortSignal): Promise<TerminalResponse> {
    const { id } = request;
    switch (request.type) {
      case 'LoadConfigRequest':
      case 'UpdateAppRequest': {
        const type = request.type === 'LoadConfigRequest' ? 'LoadConfigResponse' : 'UpdateAppResponse';
        const code = { ok: '000', 'not ok': '001', 'bad format': 'XX' }[this.options.serviceResult];
        return { type, id, responseCode: code, message: this.options.serviceResult };
      }
      case 'UploadLogsRequest':
        return { type: 'UploadLogsResponse', id, data: new Uint8Array(Buffer.from(LOG_TEXT)) };
      case 'PurchaseRequest': {
        if (this.options.cardCheckBeforePurchase) {
          const check = await this.request({ type: 'CardCheckRequest', id: this.allocateId(), maskedPan: this.maskedPan(), date: yymmdd() }).catch(
            () => undefined,
          );
          if (check === undefined || check.type !== 'CardCheckResponse' || check.responseCode !== '000') {
            return this.bank(request, { responseCode: 'XX', message: 'CANCELED' });
          }
          if (check.message === 'black')
            return this.bank(request, { responseCode: '120', message: 'Not permit', maskedPan: this.maskedPan(), amount: request.amount });
        }
        return this.bank(request, await this.authorize(request.id, 'purchase', request.amount, signal));
      }
      case 'PreauthRequest':
      case 'RefundRequest':
      case 'CashAdvanceRequest':
      case 'CashDepositRequest':
        return this.bank(request, await this.authorize(id, request.type, request.amount, signal));
      case 'CompletionRequest':
      case 'CancelRequest': {
        const hold = this.journal.find((e) => e.command === 'PreauthRequest' && e.approved && e.rrn === request.rrn);
        if (hold === undefined) return this.bank(request, { responseCode: '914', message: 'Not find original transaction' });
        const amount = request.type === 'CompletionRequest' ? request.amount : hold.amount;
        if (amount > hold.amount) return this.bank(request, { responseCode: '915', message: 'Amount not match original' });
        return this.bank(request, await this.authorize(id, request.type, amount, signal));
      }
      case 'BalanceRequest': {
        const answer = await this.authorize(id, 'balance', undefined, signal);
        return this.bank(request, answer.responseCode === '000' ? { ...answer, amount: this.options.balance } : answer);
      }
      case 'PinChangeRequest':
      case 'LoadKeysRequest': {
        const { responseCode, message } = await this.authorize(id, request.type, undefined, signal);
        return this.bank(request, { responseCode, message });
      }
      case 'CloseDayRequest':
        return this.bank(request, await this.closeDay(id, signal));
    }
  }

  /** Decides a bank answer per scenario, online or through the till's relay. */
  private async authorize(id: string, op: string, amount: number | undefined, signal: AbortSignal): Promise<Answer> {
    const canceled: Answer = { responseCode: 'XX', message: 'CANCELED' };
    const failed: Answer = { responseCode: 'XX', message: 'FAILED' };
    // Waiting for the card (test hold); the link dropping meanwhile aborts the command.
    if (!(await this.hold.pass('card', signal))) return canceled;
    const scenario = scenarioFor(amount);
    if (scenario.kind === 'card-timeout') {
      await sleep(this.options.cardTimeoutMs, signal);
      return canceled;
    }
    if (scenario.kind === 'wait-for-interrupt') {
      await sleep(Number.MAX_SAFE_INTEGER, signal);
      return canceled;
    }
    if (!(await sleep(this.options.processingDelayMs, signal))) return canceled;
    let host: HostAnswer | undefined;
    if (this.options.mode === 'offline') {
      host = await this.relayExchange({ op, amount, ref: id });
      if (host === undefined) return failed;
    } else if (scenario.kind === 'bad-host-answer') {
      return failed;
    } else {
      host =
        scenario.kind === 'decline'
          ? { code: scenario.code, text: scenario.text }
          : { code: '000', text: 'Successful transaction', authCode: String(100000 + this.sequence + 1), rrn: String(this.sequence + 1).padStart(12, '0') };
    }
    const base = { maskedPan: this.maskedPan(), amount };
    if (host.code !== '000') return { ...base, responseCode: host.code, message: host.text };
    this.sequence += 1;
    return {
      ...base,
      responseCode: '000',
      message: 'Successful transaction',
      authCode: host.authCode,
      rrn: host.rrn,
      receipt: new Uint8Array(Buffer.from(`ЧЕК ${op} ${amount ?? ''}`.trim(), 'utf8')),
      receiptNo: String(this.sequence).padStart(6, '0'),
      shiftNo: this.shiftNo,
      merchantId: MERCHANT_ID,
      terminalId: TERMINAL_ID,
      time: hhmmss(),
      date: yymmdd(),
    };
  }

  private get shiftNo(): string {
    return String(this.shift).padStart(6, '0');
  }

  /** Test control: the cashier closes the day on the terminal itself (no till involved): the shift ends, the journal empties. */
  closeShiftOnTerminal(): void {
    this.journal.length = 0;
    this.shift += 1;
  }

  /** [5.6] Totals of the journal on the day-close receipt (DF0A) in the configured form, DF12 = the shift closed. */
  private async closeDay(id: string, signal: AbortSignal): Promise<Answer> {
    const approved = this.journal.filter((e) => e.approved);
    const sum = (types: string[]) => approved.filter((e) => types.includes(e.command)).reduce((acc, e) => acc + e.amount, 0);
    const count = (types: string[]) => approved.filter((e) => types.includes(e.command)).length;
    const debit = ['PurchaseRequest', 'CompletionRequest', 'CashAdvanceRequest'];
    const credit = ['RefundRequest', 'CashDepositRequest'];
    const roubles = (minor: number) => `${minor < 0 ? '-' : ''}${Math.floor(Math.abs(minor) / 100)}.${String(Math.abs(minor) % 100).padStart(2, '0')}`;
    const receiptText = {
      lines: ['CLOSE DAY', `DEBIT ${count(debit)} ${sum(debit)}`, `CREDIT ${count(credit)} ${sum(credit)}`, `TOTAL ${sum(debit) - sum(credit)}`],
      ru: [
        'СВЕРКА ИТОГОВ',
        `СМЕНА ${this.shiftNo}`,
        `ОПЛАТА      ${count(debit)}   ${roubles(sum(debit))}`,
        `ВОЗВРАТ     ${count(credit)}   ${roubles(sum(credit))}`,
        `ИТОГО       ${roubles(sum(debit) - sum(credit))}`,
        this.closeDayMismatch ? 'ИТОГИ НЕ СОВПАЛИ' : 'ИТОГИ СОВПАЛИ',
      ],
      spec: ['данные'],
    }[this.options.closeDayReceipt].join('\n');
    const host = await this.authorize(id, 'close-day', undefined, signal);
    if (host.responseCode !== '000') return { responseCode: host.responseCode, message: host.message };
    const receipt = new Uint8Array(Buffer.from(receiptText, 'utf8'));
    const shiftNo = this.shiftNo;
    // 5.6.2 / 5.6.3: either way the terminal closed its shift.
    this.closeShiftOnTerminal();
    if (this.closeDayMismatch) return { responseCode: '915', message: 'Amount not match original', receipt, shiftNo };
    return { responseCode: '000', message: 'Successful transaction', receipt, shiftNo };
  }

  private bank<R extends Exclude<TillRequest, { type: 'InterruptRequest' | 'RepeatRequest' }>>(request: R, answer: Answer): TerminalResponse {
    const type = request.type.replace('Request', 'Response') as TerminalResponse['type'];
    const amount = 'amount' in request ? request.amount : undefined;
    if (amount !== undefined && type !== 'CloseDayResponse') {
      this.journal.push({
        command: request.type,
        id: request.id,
        amount,
        rrn: answer.rrn,
        approved: answer.responseCode === '000',
        responseCode: answer.responseCode,
      });
    }
    if (request.type === 'CancelRequest' && answer.responseCode === '000') {
      const index = this.journal.findIndex((e) => e.command === 'PreauthRequest' && e.rrn === request.rrn);
      if (index >= 0) this.journal.splice(index, 1);
    }
    return { type, id: request.id, ...answer } as TerminalResponse;
  }

  /** Offline mode: open, send, receive in DF25-sized chunks until the host's answer is complete, close (spec 4.2–4.5). */
  private async relayExchange(body: unknown): Promise<HostAnswer | undefined> {
    const open = await this.request({
      type: 'OpenConnectionRequest',
      id: this.allocateId(),
      protocol: 'tcp',
      address: this.options.processingHost ?? '',
    }).catch(() => undefined);
    if (open?.type !== 'OpenConnectionResponse' || open.connectionId === undefined) return undefined;
    const connectionId = open.connectionId;
    try {
      const sent = await this.request({ type: 'SendDataRequest', id: this.allocateId(), connectionId, data: new Uint8Array(encodeHostMessage(body)) });
      if (sent.type !== 'SendDataResponse' || sent.sentBytes === undefined) return undefined;
      let received = Buffer.alloc(0);
      for (;;) {
        const chunk = await this.request({ type: 'ReceiveDataRequest', id: this.allocateId(), connectionId, maxBytes: this.options.receiveChunkBytes });
        if (chunk.type !== 'ReceiveDataResponse' || chunk.data === undefined || chunk.data.length === 0) return undefined;
        received = Buffer.concat([received, chunk.data]);
        const message = readHostMessage(received);
        if (message) return JSON.parse(message.body.toString('utf8')) as HostAnswer;
      }
    } catch {
      return undefined;
    } finally {
      await this.request({ type: 'CloseConnectionRequest', id: this.allocateId(), connectionId }).catch(() => undefined);
    }
  }

  /** Sends a terminal-initiated request and waits for the till's answer with the same DF01. */
  private request(message: TerminalRequest): Promise<TillResponse | ErrorResponse> {
    // Closed: no till can answer, and a request's timer would outlive close() by requestTimeoutMs (holding the test
    // process open), e.g. the CloseConnection a relay exchange sends from its `finally` once close() abandoned it.
    if (this.closed) return Promise.reject(new Error(`simulator closed: ${message.type} ${message.id} not sent`));
    this.sentRequests[message.type] = (this.sentRequests[message.type] ?? 0) + 1;
    return new Promise((resolve, reject) => {
      const settle = () => {
        clearTimeout(timer);
        this.pending.delete(message.id);
        this.abandon.delete(message.id);
      };
      const timer = setTimeout(() => {
        settle();
        reject(new Error(`no answer to ${message.type} ${message.id}`));
      }, this.options.requestTimeoutMs);
      this.abandon.set(message.id, () => {
        settle();
        reject(new Error(`simulator closed before an answer to ${message.type} ${message.id}`));
      });
      this.pending.set(message.id, (answer) => {
        settle();
        if ('responseCode' in answer && answer.responseCode === 'XX' && answer.message !== undefined) this.tillErrors.push(answer.message);
        resolve(answer);
      });
      this.send(message);
    });
  }

  private send(message: TerminalRequest | TerminalResponse | ErrorResponse): void {
    this.socket?.write(encodeMessageFrame(message));
  }

  private allocateId(): string {
    this.nextRequestId = this.nextRequestId >= 999_999 ? 900_000 : this.nextRequestId + 1;
    return String(this.nextRequestId);
  }

  private maskedPan(): string {
    return maskPan(this.options.cardPan);
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      },
      Math.min(ms, 2 ** 31 - 1),
    );
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function hhmmss(now = new Date()): string {
  return [now.getUTCHours(), now.getUTCMinutes(), now.getUTCSeconds()].map((n) => String(n).padStart(2, '0')).join('');
}

function yymmdd(now = new Date()): string {
  return [now.getUTCFullYear() % 100, now.getUTCMonth() + 1, now.getUTCDate()].map((n) => String(n).padStart(2, '0')).join('');
}
