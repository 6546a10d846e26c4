/**
 * Banking-application simulator for JPAY / aQsi cardcore: a TCP server speaking the protocol of
 * @payorch/jpay (both dialects, encryption, messages, SBP, a transaction log for report, settlement
 * and void-last). A test tool: outcomes are deterministic (see scenarios.ts and README.md).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';

import {
  decodeClientHandshake,
  decodeCommand,
  decodeReply,
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  encodeMessage,
  encodeResponse,
  encodeServerHandshake,
  FrameDecoder,
  isSealed,
  JpayEcdhe,
  JpayError,
  openElement,
  parseXmlBytes,
  sealElement,
  writeXmlBytes,
  type Dialect,
  type JpayCommand,
  type JpayResponse,
  type JpaySessionKey,
  type MessageReply,
  type ResponseMap,
  type TerminalMessage,
  type XmlElement,
} from '@payorch/jpay';

import { PhaseHold } from '../phase-hold';
import { NoResponse, type Conversation } from './conversation';
import { SimLedger } from './ledger';
import { runTransaction } from './transaction-flow';

export interface JpaySimulatorOptions {
  readonly dialect: Dialect;
  /** Initial admin password (§6 default 12345678). */
  readonly adminPassword?: string;
  /** Pause between keepalives of long scenarios. */
  readonly keepaliveIntervalMs?: number;
  /** Terminal clock, for deterministic receipts. */
  readonly now?: () => Date;
}

export const DEFAULT_ADMIN_PASSWORD = '12345678';

class Connection implements Conversation {
  readonly dialect: Dialect;
  encrypted = false;
  private readonly decoder = new FrameDecoder({ maxFrameBytes: DEFAULT_MAX_FRAME_BYTES });
  private pendingReply: { resolve: (root: XmlElement) => void; reject: (error: Error) => void } | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  /** Aborted when the connection closes (ends a hold of a command that came on it). */
  private readonly gone = new AbortController();
  readonly linkGone = this.gone.signal;

  constructor(
    private readonly socket: Socket,
    private readonly sim: JpaySimulator,
  ) {
    this.dialect = sim.dialect;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.gone.abort();
      this.pendingReply?.reject(new NoResponse('connection closed'));
      this.pendingReply = undefined;
    });
    socket.on('error', () => undefined);
  }

  ask(message: TerminalMessage): Promise<MessageReply> {
    return this.askRaw(encodeMessage(message)).then(decodeReply);
  }

  askRaw(message: XmlElement): Promise<XmlElement> {
    return new Promise<XmlElement>((resolve, reject) => {
      if (this.closed) return reject(new NoResponse('connection closed'));
      this.sim.asked.push(message.name);
      this.pendingReply = { resolve, reject };
      this.send(message);
    });
  }

  sendRaw(bytes: Uint8Array): void {
    if (!this.closed) this.socket.write(bytes);
  }

  drop(): void {
    this.socket.destroy();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  private send(root: XmlElement, key = this.encrypted ? this.sim.sessionKey : undefined): void {
    this.sendRaw(encodeFrame(writeXmlBytes(key ? sealElement(root, key) : root)));
  }

  private onData(chunk: Buffer): void {
    for (const event of this.decoder.push(chunk)) {
      if (event.kind === 'garbage') {
        this.drop();
        return;
      }
      let root: XmlElement;
      try {
        const sealed = parseXmlBytes(event.frame);
        root = isSealed(sealed) && this.sim.sessionKey ? openElement(sealed, this.sim.sessionKey) : sealed;
        if (this.pendingReply) {
          const pending = this.pendingReply;
          this.pendingReply = undefined;
          pending.resolve(root);
          continue;
        }
        this.encrypted = isSealed(sealed);
      } catch {
        this.drop();
        return;
      }
      const commandRoot = root;
      this.queue = this.queue.then(() => this.handleCommand(commandRoot));
    }
  }

  private async handleCommand(root: XmlElement): Promise<void> {
    const transaction = root.name === 'transaction';
    // Held unread (test hold `received`): a connection that closes meanwhile loses it.
    if (transaction && !(await this.sim.hold.pass('received', this.gone.signal))) return;
    this.sim.received.push({ command: root.name, encrypted: this.encrypted });
    // §9 mirror: the response goes encrypted with the key the command came with (logout forgets it meanwhile).
    const commandKey = this.encrypted ? this.sim.sessionKey : undefined;
    let response: JpayResponse;
    let extra: { plainTextPan?: string; serverHandshake?: string } = {};
    try {
      if (this.encrypted && !this.sim.sessionKey) {
        response = statusOnly(root.name, 'failed', ['secure session not initialised']);
      } else if (root.children.some((c) => c.name === 'encrypted')) {
        response = statusOnly(root.name, 'formaterror');
      } else {
        const command = decodeCommand(root);
        ({ response, extra } = await this.sim.handle(command, this));
      }
    } catch (error) {
      if (error instanceof NoResponse) return;
      response = statusOnly(root.name, error instanceof JpayError && error.code === 'UNKNOWN_COMMAND' ? 'notimplemented' : 'invalidarguments');
    }
    // Decided and logged, the response not yet sent (test hold `answer`): a connection that closes meanwhile loses it.
    if (transaction) await this.sim.hold.pass('answer', this.gone.signal);
    if (this.closed) return;
    let element = encodeResponse(response, {
      plainTextPan: this.encrypted ? extra.plainTextPan : undefined,
    });
    if (extra.serverHandshake) {
      // §9: the secure login's response is encrypted with the key just agreed.
      this.encrypted = true;
      element = {
        ...element,
        attrs: { ...element.attrs, 'server-handshake': extra.serverHandshake },
      };
    }
    this.send(element, extra.serverHandshake ? this.sim.sessionKey : commandKey);
  }
}

function statusOnly(name: string, status: string, errors: string[] = []): JpayResponse {
  return { command: name, status, errors } as unknown as JpayResponse;
}

export interface HandleResult {
  readonly response: JpayResponse;
  readonly extra: { plainTextPan?: string; serverHandshake?: string };
}

export class JpaySimulator {
  readonly dialect: Dialect;
  readonly ledger: SimLedger;
  readonly keepaliveIntervalMs: number;
  sessionKey: JpaySessionKey | undefined;
  /**
   * Test control: hold `transaction` commands at a phase (phase-hold.ts): `received` = not read yet, `card` =
   * card purchases before the card-path messages, `answer` = decided and logged, the response not yet sent.
   */
  readonly hold = new PhaseHold();
  /** Root names of the messages sent to the client during commands (display, keepalive, …), in order — for tests. */
  readonly asked: string[] = [];
  /** Every command received, in order, and whether it came encrypted (§9) — for tests. */
  readonly received: { readonly command: string; readonly encrypted: boolean }[] = [];
  private adminPassword: string;
  private token: string | undefined;
  private hostKeys = new Map<string, string>();
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(options: JpaySimulatorOptions) {
    this.dialect = options.dialect;
    this.adminPassword = options.adminPassword ?? DEFAULT_ADMIN_PASSWORD;
    this.keepaliveIntervalMs = options.keepaliveIntervalMs ?? 5;
    this.ledger = new SimLedger(options.now ?? (() => new Date()));
  }

  /** Listens on 127.0.0.1 (port 0 = ephemeral). Resolves with the bound port. */
  listen(port = 0, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        new Connection(socket, this);
      });
      server.once('error', reject);
      server.listen(port, host, () => {
        this.server = server;
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Names of host keys set with sethostkey (material is never exposed). */
  get hostKeyNames(): string[] {
    return [...this.hostKeys.keys()];
  }

  async handle(command: JpayCommand, conversation: Conversation): Promise<HandleResult> {
    const ok = <C extends JpayCommand['command']>(name: C, body: Partial<ResponseMap[C]> = {}): HandleResult => ({
      response: { command: name, status: 'ok', errors: [], ...body } as unknown as JpayResponse,
      extra: {},
    });
    const fail = (name: string, status: string): HandleResult => ({
      response: statusOnly(name, status),
      extra: {},
    });

    switch (command.command) {
      case 'login': {
        let serverHandshake: string | undefined;
        if (command.clientHandshake) {
          const ecdhe = new JpayEcdhe();
          this.sessionKey = ecdhe.deriveKey(decodeClientHandshake(command.clientHandshake));
          serverHandshake = encodeServerHandshake(ecdhe.publicPoint);
        }
        if (command.password !== this.adminPassword) {
          return { response: statusOnly('login', 'notauthorized'), extra: { serverHandshake } };
        }
        this.token = randomBytes(16).toString('hex').toUpperCase();
        return { ...ok('login', { token: this.token }), extra: { serverHandshake } };
      }
      case 'resetpassword':
        this.adminPassword = DEFAULT_ADMIN_PASSWORD;
        this.token = undefined;
        return ok('resetpassword');
      case 'report':
      case 'settlement':
      case 'clear':
        if (command.password !== this.adminPassword) return fail(command.command, 'notauthorized');
        return this.passwordCommand(command);
      case 'transaction': {
        if (command.manualEntry && command.manualEntry.password !== this.adminPassword) {
          return fail('transaction', 'notauthorized');
        }
        const outcome = await runTransaction(command, conversation, this);
        return { response: outcome.response, extra: { plainTextPan: outcome.plainTextPan } };
      }
      default:
        if (command.token !== this.token) return fail(command.command, 'notauthorized');
        return this.tokenCommand(command, conversation, ok);
    }
  }

  private passwordCommand(command: Extract<JpayCommand, { command: 'report' | 'settlement' | 'clear' }>): HandleResult {
    switch (command.command) {
      case 'report':
        return {
          response: {
            command: 'report',
            status: 'ok',
            errors: [],
            xreport: this.ledger.xreport(command.reportType),
          },
          extra: {},
        };
      case 'settlement':
        if (command.force && this.dialect !== 'aqsi') {
          return { response: statusOnly('settlement', 'invalidarguments'), extra: {} };
        }
        return {
          response: {
            command: 'settlement',
            status: 'ok',
            errors: [],
            bankName: this.dialect === 'aqsi' ? 'BANK' : undefined,
            sreport: this.ledger.settle(true),
          } as ResponseMap['settlement'],
          extra: {},
        };
      case 'clear':
        return {
          response: {
            command: 'clear',
            status: 'ok',
            errors: [],
            sreport: this.ledger.settle(false),
          },
          extra: {},
        };
    }
  }

  private async tokenCommand(
    command: Extract<JpayCommand, { token: string }>,
    conversation: Conversation,
    ok: <C extends JpayCommand['command']>(name: C, body?: Partial<ResponseMap[C]>) => HandleResult,
  ): Promise<HandleResult> {
    switch (command.command) {
      case 'logout':
        this.token = undefined;
        this.sessionKey = undefined;
        return ok('logout');
      case 'changepassword':
        if (command.password !== this.adminPassword) return { response: statusOnly('changepassword', 'notauthorized'), extra: {} };
        this.adminPassword = command.newPassword;
        return ok('changepassword');
      case 'updateconfiguration':
        return ok('updateconfiguration');
      case 'testconnection':
        return ok('testconnection');
      case 'loadworkkeys':
        return ok('loadworkkeys', {
          macChangeReceipt: { rrn: '123456789123' },
          netChangeReceipt: { rrn: '023456789120' },
        });
      case 'loadmasterkeys':
        return ok('loadmasterkeys', {
          receipt: {
            pkcv: '123456',
            mkcv: '789ABC',
            keys: this.dialect === 'aqsi' ? [{ type: '10', algorithm: '01', result: 'success', kcv: 'B5A146' }] : [],
          },
        });
      case 'getparameters':
        return ok('getparameters', {
          parameters: {
            ...this.ledger.parameters,
            sdk: this.dialect === 'aqsi' ? '2.0.0' : '1.0.4',
          },
        });
      case 'sethostkey':
        this.hostKeys.set(command.name, command.material);
        return ok('sethostkey');
      case 'runreset':
        return this.runReset(conversation, ok);
    }
  }

  /** §10: keepalives with reset-connected-indicator 0, 0, 1; a non-ok reply aborts. */
  private async runReset(conversation: Conversation, ok: <C extends JpayCommand['command']>(name: C) => HandleResult): Promise<HandleResult> {
    const root = this.dialect === 'jpay' ? 'keep-alive' : 'keepalive';
    for (const connected of [false, false, true]) {
      const reply = await conversation.ask({ type: 'keepalive', root, resetConnected: connected });
      if (reply.type !== 'status' || reply.status !== 'ok') {
        return { response: statusOnly('runreset', 'cancelled'), extra: {} };
      }
      await conversation.sleep(this.keepaliveIntervalMs);
    }
    this.ledger.clear();
    return ok('runreset');
  }
}
