import { SsiEcrChannel } from './channel';
import { systemClock, sleep, withTimeout, type Clock } from './clock';
import { encodeRequest, type SsiResponse } from './codec';
import { isTerminalStatus, type TerminalStatus } from './codes';
import { isSsiEcrError, SsiEcrError } from './errors';
import type { JsonObject } from './json';
import type { PrintPdfUrlParams, PrintXmlParams, SsiRequest } from './messages';
import {
  parseMerchantList,
  parseReceipt,
  parseReport,
  parseTerminalInfo,
  parseTransactionResult,
  type MerchantList,
  type TerminalInfo,
  type TerminalReport,
  type TransactionResult,
} from './results';
import type { TransportFactory } from './transport';

export interface SsiEcrClientOptions {
  /** Opens the byte pipe to the terminal (TCP, tunnel stream…). */
  readonly connect: TransportFactory;
  readonly clock?: Clock;
  /** Per request; a request that times out closes the connection (its response could arrive late). */
  readonly responseTimeoutMs?: number;
  /** Pause between requests; public clients keep ≥ 250 ms (ssi-ecr-notes.md). */
  readonly minRequestGapMs?: number;
  /** `persistent` keeps one connection; `per-request` opens one per request as some clients do. */
  readonly connectionMode?: 'persistent' | 'per-request';
  readonly maxFrameBytes?: number;
}

/** The connection a request was written on (`CallOptions.onWritten`). */
export interface RequestLink {
  /** Clock time at which the request's bytes were handed to the connection. */
  readonly writtenAt: number;
  /** Clock time at which that connection ended; undefined while it is open. */
  readonly closedAt: number | undefined;
}

export interface CallOptions {
  /** Called as the request is written; not when it could not be (no connection, or the connection ended first). */
  readonly onWritten?: (link: RequestLink) => void;
}

/**
 * Request/response client for one terminal. Requests are serialised (the protocol allows one at a time);
 * transport and framing problems throw typed SsiEcrError, terminal answers with `error: true` are
 * returned by `call` and thrown as TERMINAL_ERROR / TERMINAL_BUSY by the typed helpers.
 */
export class SsiEcrClient {
  readonly clock: Clock;
  private readonly responseTimeoutMs: number;
  private readonly minRequestGapMs: number;
  private channel: SsiEcrChannel | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private lastRequestAt = -Infinity;

  constructor(private readonly options: SsiEcrClientOptions) {
    this.clock = options.clock ?? systemClock;
    this.responseTimeoutMs = options.responseTimeoutMs ?? 5000;
    this.minRequestGapMs = options.minRequestGapMs ?? 250;
  }

  /** Sends a typed request; resolves with the terminal's response whatever its `error` flag. */
  call(request: SsiRequest, options: CallOptions = {}): Promise<SsiResponse> {
    return this.callRaw(encodeRequest(request), options);
  }

  /** Sends an already-built JSON message (CLI, tests of malformed input). */
  callRaw(message: JsonObject, options: CallOptions = {}): Promise<SsiResponse> {
    const run = this.queue.then(() => this.exchange(message, options));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Like `call`, but `error: true` becomes a thrown TERMINAL_ERROR (TERMINAL_BUSY for E06). */
  async callOk(request: SsiRequest): Promise<SsiResponse> {
    const response = await this.call(request);
    if (response.error) throw terminalError(response);
    return response;
  }

  /** Spec 5.4.1. */
  async getStatus(): Promise<TerminalStatus> {
    const response = await this.callOk({ method: 'GetStatus' });
    if (!response.status || !isTerminalStatus(response.status)) {
      throw new SsiEcrError('UNEXPECTED_RESPONSE', 'GetStatus response has no valid status');
    }
    return response.status;
  }

  /** Spec 5.4.2: only effective in S02/S03 (S08 in later revisions); E08 otherwise. */
  async interrupt(): Promise<void> {
    await this.callOk({ method: 'Interrupt' });
  }

  /** Spec 5.4.3. */
  async restart(): Promise<void> {
    await this.callOk({ method: 'Restart' });
  }

  /** Spec 5.5.3. */
  async ping(): Promise<void> {
    await this.callOk({ method: 'PingDevice' });
  }

  /** Spec 5.5.10 (Android only). */
  async restartPaymentApp(): Promise<void> {
    await this.callOk({ method: 'RestartPaymentApp' });
  }

  /**
   * Spec 5.5.1: the last financial result. A declined transaction is `error: true` *with* params; that is
   * returned, not thrown. Only request faults (E06, no params) throw.
   */
  async getLastResult(): Promise<TransactionResult> {
    return this.resultOf(await this.call({ method: 'GetLastResult' }));
  }

  /** Later revision: result of the operation sent with this `transactionUid`. */
  async getResultByUid(transactionUid: string): Promise<TransactionResult> {
    return this.resultOf(await this.call({ method: 'GetResultByUid', params: { transactionUid } }));
  }

  /** Spec 5.5.2. */
  async getLastReceipt(): Promise<string> {
    return parseReceipt(await this.callOk({ method: 'GetLastReceipt' }));
  }

  /** Spec 5.5.4: a failed reconciliation is `error: true` with zero totals; returned, not thrown. */
  async getLastReport(): Promise<TerminalReport> {
    const response = await this.call({ method: 'GetLastReport' });
    if (response.error && response.params === undefined) throw terminalError(response);
    return parseReport(response);
  }

  /** Spec 5.5.6. */
  async getLastReportReceipt(): Promise<string> {
    return parseReceipt(await this.callOk({ method: 'GetLastReportReceipt' }));
  }

  /** Spec 5.5.5. */
  async getMerchantList(): Promise<MerchantList> {
    return parseMerchantList(await this.callOk({ method: 'GetMerchantList' }));
  }

  /** Later revision; the shape is undocumented, so params are returned as received. */
  async getMerchantListDetailed(): Promise<JsonObject> {
    return (await this.callOk({ method: 'GetMerchantListDetailed' })).params ?? {};
  }

  /** Spec 5.5.7 (Android only); `lrc` is computed from `receipt`. */
  async printXml(params: PrintXmlParams): Promise<void> {
    await this.callOk({ method: 'PrintXml', params });
  }

  /** Spec 5.5.8 (Android only). */
  async printPdfUrl(params: PrintPdfUrlParams): Promise<void> {
    await this.callOk({ method: 'PrintPdfUrl', params });
  }

  /** Spec 5.5.9: Android or Linux shape. */
  async getTerminalInfo(): Promise<TerminalInfo> {
    return parseTerminalInfo(await this.callOk({ method: 'GetTerminalInfo' }));
  }

  /** Closes the connection; the next call opens a new one. */
  close(): void {
    this.channel?.close();
    this.channel = undefined;
  }

  private resultOf(response: SsiResponse): TransactionResult {
    if (response.error && response.params === undefined) throw terminalError(response);
    return parseTransactionResult(response);
  }

  private async exchange(message: JsonObject, options: CallOptions): Promise<SsiResponse> {
    const wait = this.lastRequestAt + this.minRequestGapMs - this.clock.now();
    if (wait > 0) await sleep(this.clock, wait);
    const channel = await this.openChannel();
    const writtenAt = this.clock.now();
    this.lastRequestAt = writtenAt;
    // `send` writes synchronously, right after this; a channel that ended meanwhile writes nothing.
    if (channel.isOpen) {
      options.onWritten?.({
        writtenAt,
        get closedAt() {
          return channel.closedAt;
        },
      });
    }
    try {
      return await withTimeout(this.clock, channel.send(message), this.responseTimeoutMs, `${String(message.method)} response`);
    } catch (error) {
      if (error instanceof SsiEcrError && error.code === 'TIMEOUT') channel.abandon();
      if (error instanceof SsiEcrError && error.code === 'UNEXPECTED_RESPONSE') channel.close();
      throw error;
    } finally {
      this.lastRequestAt = this.clock.now();
      if (this.options.connectionMode === 'per-request') {
        channel.close();
        this.channel = undefined;
      }
    }
  }

  private async openChannel(): Promise<SsiEcrChannel> {
    if (this.channel?.isOpen) return this.channel;
    let transport;
    try {
      transport = await this.options.connect();
    } catch (error) {
      // Nothing was sent: callers may treat the request as not made.
      throw isSsiEcrError(error, 'CONNECT_FAILED') ? error : new SsiEcrError('CONNECT_FAILED', `cannot connect to the terminal: ${(error as Error).message}`);
    }
    this.channel = new SsiEcrChannel(transport, this.options.maxFrameBytes, this.clock);
    return this.channel;
  }
}

/** A terminal `error: true` answer as a typed error (E06 → TERMINAL_BUSY). */
export function terminalError(response: SsiResponse): SsiEcrError {
  const code = response.errorCode === 'E06' ? 'TERMINAL_BUSY' : 'TERMINAL_ERROR';
  return new SsiEcrError(code, `${response.method}: ${response.errorCode} ${response.errorDescription}`.trim(), {
    terminalErrorCode: response.errorCode,
    terminalErrorDescription: response.errorDescription,
    ...(response.errorParams !== undefined ? { field: response.errorParams } : {}),
  });
}
