import { decodeMessage, encodeMessageFrame } from '../codec';
import { COMMANDS, commandByCode, type TillCommandName } from '../commands';
import { JoinprotoError } from '../errors';
import { type DecodeEvent, DEFAULT_MAX_FRAME_BYTES, FrameDecoder } from '../framing';
import type {
  CardCheckRequest,
  ErrorResponse,
  InterruptResponse,
  Message,
  MessageOf,
  MessageType,
  TerminalMessage,
  TerminalRequest,
  TerminalResponse,
  TillMessage,
  TillRequest,
  TillResponse,
} from '../messages';
import { CANCELED_TEXT } from '../response-codes';
import { PROTOCOL_ERROR_CODE } from '../tags';
import { createSequentialIdAllocator, type IdAllocator } from './ids';
import { type CommandOutcome, type RecoveryOutcome, toOperationResult, type UnknownReason } from './outcome';
import { parseRelayTarget, RelayError, type RelayPort, unavailableRelay } from './relay';
import type { ByteTransport } from './transport';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A till command without its DF01: the session allocates the id. Interrupt and Repeat have their own methods. */
export type TillCommandInput = DistributiveOmit<Exclude<TillRequest, MessageOf<'InterruptRequest'> | MessageOf<'RepeatRequest'>>, 'id'>;
/** The answer type of a command input, e.g. PurchaseResponse for PurchaseRequest. */
export type ResponseOf<I extends { type: MessageType }> = I['type'] extends `${infer C}Request` ? Extract<TerminalResponse, { type: `${C}Response` }> : never;

/** Verdict of the till's card lists for a 02 card check (spec 5.2). */
export type CardListVerdict = 'white' | 'black';
export type CardCheckPolicy = (request: Pick<CardCheckRequest, 'maskedPan' | 'date'>) => CardListVerdict | Promise<CardListVerdict>;

/** Default card check: every card is on the white list. */
export const allowAllCards: CardCheckPolicy = () => 'white';

/** Black/white lists of masked PANs. Black wins; with a non-empty white list, unlisted cards are black. */
export function cardListPolicy(lists: { readonly black?: readonly string[]; readonly white?: readonly string[] }): CardCheckPolicy {
  const black = new Set(lists.black ?? []);
  const white = new Set(lists.white ?? []);
  return ({ maskedPan }) => (black.has(maskedPan) || (white.size > 0 && !white.has(maskedPan)) ? 'black' : 'white');
}

/**
 * How long the till waits for each command's answer. Bank commands wait for a card, a PIN and the processing
 * centre (minutes); interrupt and repeat are answered at once (seconds). TMS work may take long.
 */
export const DEFAULT_TIMEOUTS_MS: Readonly<Record<TillCommandName, number>> = {
  Purchase: 180_000,
  Preauth: 180_000,
  Completion: 180_000,
  Cancel: 180_000,
  Refund: 180_000,
  CashAdvance: 180_000,
  CashDeposit: 180_000,
  Balance: 180_000,
  PinChange: 180_000,
  LoadKeys: 120_000,
  CloseDay: 300_000,
  LoadConfig: 300_000,
  UpdateApp: 600_000,
  UploadLogs: 300_000,
  Interrupt: 10_000,
  Repeat: 15_000,
};

/** Observability hook; carries ids and codes, never card data. */
export type TillSessionEvent =
  | { readonly type: 'sent'; readonly messageType: MessageType; readonly id?: string }
  | { readonly type: 'received'; readonly messageType: MessageType; readonly id?: string }
  | { readonly type: 'bad-frame'; readonly code: string; readonly command?: string; readonly id?: string }
  | { readonly type: 'late-response'; readonly messageType: MessageType; readonly id: string }
  | { readonly type: 'relay-error'; readonly request: MessageType; readonly code: string }
  | { readonly type: 'closed' };

export interface TillSessionOptions {
  readonly transport: ByteTransport;
  /** DF01 source; default: in-memory 000001.. (persist one in production). */
  readonly ids?: IdAllocator;
  readonly cardCheck?: CardCheckPolicy;
  /** Relay for terminals without internet; default refuses every 91 with `XX Relay not available`. */
  readonly relay?: RelayPort;
  readonly timeoutsMs?: Partial<Record<TillCommandName, number>>;
  readonly maxFrameBytes?: number;
  /** A partial frame idle this long is dropped and answered `XX other err`. Default 2 s. */
  readonly idleFlushMs?: number;
  /** Largest DF24 the till returns for one 93, whatever DF25 asks. Default 4096. */
  readonly maxRelayChunkBytes?: number;
  readonly onEvent?: (event: TillSessionEvent) => void;
}

interface Waiter {
  readonly command: TillCommandName;
  readonly id: string;
  readonly matches: (message: TerminalMessage) => boolean;
  readonly settle: (outcome: CommandOutcome | RecoveryOutcome) => void;
  readonly timer: NodeJS.Timeout;
}

const MAX_ID_ATTEMPTS = 16;
const MAX_DF1A = 40;

/**
 * The till's side of a Joinproto link (spec 1): sends one command at a time and matches the answer by DF01,
 * while serving what the terminal asks meanwhile — echo (99), card check (02), relay (91–94) — and answering
 * unknown or malformed frames with `XX` (spec 3). An answer that never comes is reported as outcome `unknown`,
 * never as a failure: recover it with `recover(id)` (95).
 */
export class TillSession {
  private readonly transport: ByteTransport;
  private readonly decoder: FrameDecoder;
  private readonly ids: IdAllocator;
  private readonly cardCheck: CardCheckPolicy;
  private readonly relay: RelayPort;
  private readonly timeouts: Readonly<Record<TillCommandName, number>>;
  private readonly idleFlushMs: number;
  private readonly maxRelayChunkBytes: number;
  private readonly emit: (event: TillSessionEvent) => void;
  private readonly waiters = new Set<Waiter>();
  /** Ids whose answer may still come: never handed out again. */
  private readonly inDoubt = new Set<string>();
  /** Answers that arrived after their command was given up on, by id. */
  private readonly lateResponses = new Map<string, TerminalResponse | ErrorResponse>();
  private readonly relayConnections = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: TillSessionOptions) {
    this.transport = options.transport;
    this.decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES });
    this.ids = options.ids ?? createSequentialIdAllocator();
    this.cardCheck = options.cardCheck ?? allowAllCards;
    this.relay = options.relay ?? unavailableRelay;
    this.timeouts = { ...DEFAULT_TIMEOUTS_MS, ...options.timeoutsMs };
    this.idleFlushMs = options.idleFlushMs ?? 2_000;
    this.maxRelayChunkBytes = options.maxRelayChunkBytes ?? 4096;
    this.emit = options.onEvent ?? (() => undefined);
    this.transport.onData((chunk) => this.onData(chunk));
    this.transport.onClose(() => this.onClose());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Ids whose outcome is unknown and not yet recovered. */
  get idsInDoubt(): readonly string[] {
    return [...this.inDoubt];
  }

  /**
   * Runs one till command; commands queue behind each other (one at a time, spec 1). Rejects only when the
   * command was certainly not sent (closed session, invalid input); after sending, it always resolves.
   */
  execute<I extends TillCommandInput>(input: I): Promise<CommandOutcome<ResponseOf<I>>> {
    const run = this.queue.then(() => this.send(input));
    this.queue = run.catch(() => undefined);
    return run as Promise<CommandOutcome<ResponseOf<I>>>;
  }

  /** 90: interrupts the pending command (spec 4.10). Not queued. The command itself still answers (CANCELED). */
  async interrupt(): Promise<CommandOutcome<InterruptResponse>> {
    const id = await this.allocateId();
    const request: TillRequest = { type: 'InterruptRequest', id };
    return this.dispatch('Interrupt', id, request, (m) => m.type === 'InterruptResponse' && m.id === id) as Promise<CommandOutcome<InterruptResponse>>;
  }

  /**
   * Recovers the outcome of command `id` (95, spec 4.9): an answer that arrived late is returned at once,
   * otherwise the terminal is asked to repeat it. Queued like any command. A 95 left unanswered (timeout) closes the
   * session: the terminal's "not found" names no id, so a late one could not be told from the next 95's answer.
   */
  recover(id: string): Promise<RecoveryOutcome> {
    const late = this.lateResponses.get(id);
    if (late !== undefined) {
      this.settleDoubt(id);
      return Promise.resolve(this.completed(late, id));
    }
    const run = this.queue.then(async () => {
      const request: TillRequest = { type: 'RepeatRequest', id };
      const outcome = await this.dispatch(
        'Repeat',
        id,
        request,
        (m) => m.type === 'RepeatResponse' || ('id' in m && m.id === id && m.type !== 'InterruptResponse'),
      );
      if (outcome.outcome !== 'unknown') this.settleDoubt(id);
      return outcome;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Closes the transport; pending commands become `unknown` (transport-closed). */
  close(): void {
    this.transport.close();
    this.onClose();
  }

  private async send(input: TillCommandInput): Promise<CommandOutcome> {
    const command = commandOfInput(input);
    const id = await this.allocateId();
    const request = { ...input, id } as TillRequest;
    return this.dispatch(command, id, request, (m) => {
      if (m.type === 'ErrorResponse') return m.id === id && m.command === COMMANDS[command].code;
      return m.type === `${command}Response` && 'id' in m && m.id === id;
    }) as Promise<CommandOutcome>;
  }

  private dispatch(
    command: TillCommandName,
    id: string,
    request: TillRequest,
    matches: (message: TerminalMessage) => boolean,
  ): Promise<CommandOutcome | RecoveryOutcome> {
    if (this.closed) return Promise.reject(new JoinprotoError('SESSION_CLOSED', 'the transport is closed; command not sent'));
    const frame = encodeMessageFrame(request);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        command,
        id,
        matches,
        settle: (outcome) => {
          clearTimeout(waiter.timer);
          this.waiters.delete(waiter);
          if (outcome.outcome === 'unknown' && command !== 'Repeat') this.inDoubt.add(id);
          resolve(outcome);
        },
        timer: setTimeout(() => {
          waiter.settle(unknown(command, id, 'timeout', `no answer within ${this.timeouts[command]} ms`));
          // "No answer for this id" carries no DF01 (spec 4.9.1): once a 95 went unanswered, its late "not found" on
          // this link would be taken for the next 95's (another command reported not performed). The link is ended;
          // what comes next runs on a new one, where no answer of this 95 can arrive.
          if (command === 'Repeat') this.close();
        }, this.timeouts[command]),
      };
      this.waiters.add(waiter);
      this.write(request, frame);
    });
  }

  private async allocateId(): Promise<string> {
    for (let attempt = 0; attempt < MAX_ID_ATTEMPTS; attempt++) {
      const id = await this.ids.next();
      const busy = this.inDoubt.has(id) || [...this.waiters].some((w) => w.id === id);
      if (/^[\x20-\x7e]{6}$/.test(id) && !busy) {
        await this.ids.accepted?.(id);
        return id;
      }
    }
    throw new JoinprotoError('ID_CONFLICT', 'the id allocator keeps returning ids that are invalid or still in doubt');
  }

  private onData(chunk: Uint8Array): void {
    clearTimeout(this.idleTimer);
    for (const event of this.decoder.push(chunk)) this.onDecodeEvent(event);
    if (this.decoder.bufferedBytes > 0 && !this.closed) {
      this.idleTimer = setTimeout(() => this.decoder.flush().forEach((event) => this.onDecodeEvent(event)), this.idleFlushMs);
    }
  }

  private onDecodeEvent(event: DecodeEvent): void {
    if (event.kind === 'garbage') {
      this.onBadFrame(event.error);
      return;
    }
    let message: TerminalMessage;
    try {
      message = decodeMessage(event.frame, 'terminal->till') as TerminalMessage;
    } catch (error) {
      if (!(error instanceof JoinprotoError)) throw error;
      this.onBadFrame(error);
      return;
    }
    this.emit({ type: 'received', messageType: message.type, id: 'id' in message ? message.id : undefined });
    this.onMessage(message);
  }

  /** [JP-3] Malformed frames get `XX other err`, unknown commands `XX UNKNOWN COMMAND` with DF00/DF01 echoed. */
  private onBadFrame(error: JoinprotoError): void {
    const { command, id } = error.details;
    this.emit({ type: 'bad-frame', code: error.code, command, id });
    const known = command === undefined ? undefined : commandByCode(command);
    if (known !== undefined && COMMANDS[known].initiator === 'till') {
      // A broken answer to one of our commands: its content cannot be trusted, and answering it would confuse the terminal.
      for (const waiter of this.waiters) {
        if (waiter.id === id) waiter.settle(unknown(waiter.command, waiter.id, 'invalid-response', `${error.code}: ${error.message}`));
      }
      return;
    }
    if (error.reply === 'UNKNOWN COMMAND' && command !== undefined) {
      this.reply({ type: 'ErrorResponse', command, id, responseCode: PROTOCOL_ERROR_CODE, message: 'UNKNOWN COMMAND' });
    } else if (error.reply !== null) {
      this.reply({ type: 'ErrorResponse', responseCode: PROTOCOL_ERROR_CODE, message: 'other err' });
    }
  }

  private onMessage(message: TerminalMessage): void {
    switch (message.type) {
      case 'EchoRequest':
      case 'CardCheckRequest':
      case 'OpenConnectionRequest':
      case 'SendDataRequest':
      case 'ReceiveDataRequest':
      case 'CloseConnectionRequest':
        void this.serve(message);
        return;
      default:
        this.onAnswer(message);
    }
  }

  private onAnswer(message: TerminalResponse | ErrorResponse): void {
    for (const waiter of this.waiters) {
      if (waiter.matches(message)) {
        if (message.type === 'RepeatResponse' && waiter.command === 'Repeat') {
          waiter.settle({ outcome: 'not-found', command: 'Repeat', id: waiter.id, response: message });
        } else {
          waiter.settle(this.completed(message, waiter.id, waiter.command === 'Repeat' ? undefined : waiter.command));
        }
        return;
      }
    }
    if (message.type === 'ErrorResponse' && message.command === undefined) {
      // `XX other err`: the terminal could not read something we sent. If a command is pending, that was it.
      for (const waiter of this.waiters) {
        waiter.settle(unknown(waiter.command, waiter.id, 'terminal-rejected-frame', message.message ?? 'other err'));
      }
      return;
    }
    if ('id' in message && message.id !== undefined && this.inDoubt.has(message.id)) {
      this.lateResponses.set(message.id, message);
      this.emit({ type: 'late-response', messageType: message.type, id: message.id });
    }
  }

  private completed(response: TerminalResponse | ErrorResponse, id: string, command?: TillCommandName): CommandOutcome {
    const name = command ?? commandOfAnswer(response) ?? 'Repeat';
    return { outcome: 'completed', command: name, id, response, result: toOperationResult(response) };
  }

  private settleDoubt(id: string): void {
    this.inDoubt.delete(id);
    this.lateResponses.delete(id);
  }

  private async serve(request: TerminalRequest): Promise<void> {
    this.reply(await this.answer(request));
  }

  private async answer(request: TerminalRequest): Promise<TillResponse> {
    const { id } = request;
    switch (request.type) {
      case 'EchoRequest':
        // [JP-4.1] the answer is identical to the request.
        return { type: 'EchoResponse', id };
      case 'CardCheckRequest':
        try {
          const verdict = await this.cardCheck({ maskedPan: request.maskedPan, date: request.date });
          return { type: 'CardCheckResponse', id, responseCode: '000', message: verdict };
        } catch {
          return { type: 'CardCheckResponse', id, responseCode: PROTOCOL_ERROR_CODE, message: CANCELED_TEXT };
        }
      case 'OpenConnectionRequest':
        return this.relayStep(request, async () => {
          const connectionId = await this.relay.open(parseRelayTarget(request.protocol, request.address));
          if (this.closed) {
            // The session closed while this one was opening: no 94 will come for it, and onClose has closed the rest.
            await this.relay.close(connectionId).catch(() => undefined);
            throw new RelayError('CLOSED', 'the session closed while the connection was opening');
          }
          this.relayConnections.add(connectionId);
          return { type: 'OpenConnectionResponse', id, connectionId };
        });
      case 'SendDataRequest':
        return this.relayStep(request, async () => ({
          type: 'SendDataResponse',
          id,
          sentBytes: await this.relay.send(request.connectionId, request.data),
        }));
      case 'ReceiveDataRequest':
        return this.relayStep(request, async () => ({
          type: 'ReceiveDataResponse',
          id,
          data: await this.relay.receive(request.connectionId, Math.min(request.maxBytes, this.maxRelayChunkBytes)),
        }));
      case 'CloseConnectionRequest':
        // [JP-4.5] the till answers the bare id whatever the result of closing.
        this.relayConnections.delete(request.connectionId);
        await this.relay.close(request.connectionId).catch(() => undefined);
        return { type: 'CloseConnectionResponse', id };
    }
  }

  private async relayStep(
    request: Extract<TerminalRequest, { type: 'OpenConnectionRequest' | 'SendDataRequest' | 'ReceiveDataRequest' }>,
    step: () => Promise<TillResponse>,
  ): Promise<TillResponse> {
    try {
      return await step();
    } catch (error) {
      const relayError = error instanceof RelayError ? error : new RelayError('CLOSED', String(error));
      this.emit({ type: 'relay-error', request: request.type, code: relayError.code });
      const type = request.type.replace('Request', 'Response') as 'OpenConnectionResponse';
      return { type, id: request.id, responseCode: PROTOCOL_ERROR_CODE, message: relayError.wireText.slice(0, MAX_DF1A) };
    }
  }

  private reply(message: TillMessage): void {
    if (this.closed) return;
    this.write(message, encodeMessageFrame(message));
  }

  private write(message: Message, frame: Uint8Array): void {
    this.transport.write(frame);
    this.emit({ type: 'sent', messageType: message.type, id: 'id' in message ? message.id : undefined });
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    for (const waiter of [...this.waiters]) {
      waiter.settle(unknown(waiter.command, waiter.id, 'transport-closed', 'the transport closed before the answer'));
    }
    for (const connectionId of this.relayConnections) void this.relay.close(connectionId).catch(() => undefined);
    this.relayConnections.clear();
    this.emit({ type: 'closed' });
  }
}

function unknown(command: TillCommandName, id: string, reason: UnknownReason, detail: string): CommandOutcome {
  return { outcome: 'unknown', command, id, reason, detail };
}

function commandOfInput(input: TillCommandInput): TillCommandName {
  return input.type.slice(0, -'Request'.length) as TillCommandName;
}

function commandOfAnswer(message: TerminalResponse | ErrorResponse): TillCommandName | undefined {
  const name =
    message.type === 'ErrorResponse' ? (message.command === undefined ? undefined : commandByCode(message.command)) : message.type.slice(0, -'Response'.length);
  return name === undefined ? undefined : (name as TillCommandName);
}
