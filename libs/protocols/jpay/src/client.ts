/**
 * JPAY / aQsi cardcore client. Our system is the client; the terminal's banking application is the
 * server. One command per connection (§3: connect, command, messages, response, close), one command
 * at a time ([JPAY-8-ONE]: a second concurrent call is rejected with `BUSY`).
 *
 * Admin mode (§6): `login` returns a token used by the "protected" commands until `logout`. Reports,
 * settlement, clear and manual card entry take the admin password instead (§7). Passwords are passed
 * in per call (they come from the terminal's encrypted credentials) and are never stored or logged.
 *
 * Secure session (§9): `login(password, { secure: true })` runs ECDHE; afterwards every command is
 * sent encrypted, so its messages and response come back encrypted. The key lives in memory only.
 */
import { encodeCommand } from './codec-commands';
import { decodeResponse } from './codec-responses';
import { encodeClientHandshake, JpayEcdhe, type JpaySessionKey } from './crypto';
import { afterSendError, JpayError } from './errors';
import type { JpayEventListener } from './events';
import { runExchange } from './exchange';
import { DEFAULT_MAX_FRAME_BYTES } from './framing';
import { mergeHandlers, type JpayMessageHandlers } from './handlers';
import type { CommandName, Dialect, JpayCommand, LoginResponse, ReportType, ResponseMap, TokenCommandName, TransactionRequest } from './messages';
import { transactionOutcome, unknownOutcome, type TransactionResult } from './outcome';
import type { JpayConnect, JpayTransport } from './transport';

export interface JpayClientOptions {
  /** Opens a connection to the banking application (TCP, or a tunnel stream). */
  readonly connect: JpayConnect;
  readonly dialect: Dialect;
  readonly handlers?: JpayMessageHandlers;
  /** Live events of every command (messages, cancel, responses). */
  readonly onEvent?: JpayEventListener;
  /** Longest silence from the application during a command. Default 180 s. */
  readonly idleTimeoutMs?: number;
  /** Packet bound, prefix included. Default `DEFAULT_MAX_FRAME_BYTES`. */
  readonly maxFrameBytes?: number;
}

export interface CommandOptions {
  /** Abort: the next keepalive is answered `cancelled` (§8.9). */
  readonly signal?: AbortSignal;
  /** Per-command handlers, merged over the client's. */
  readonly handlers?: JpayMessageHandlers;
  /** Send this command in clear although a secure session exists. */
  readonly plaintext?: boolean;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 180_000;

export class JpayClient {
  readonly dialect: Dialect;
  #token: string | undefined;
  #key: JpaySessionKey | undefined;
  #busy = false;

  constructor(private readonly options: JpayClientOptions) {
    this.dialect = options.dialect;
  }

  get isLoggedIn(): boolean {
    return this.#token !== undefined;
  }

  get isSecure(): boolean {
    return this.#key !== undefined;
  }

  // ---- admin session (§6, §9) ------------------------------------------------------------------

  /** §8.1 login; with `secure` the ECDHE handshake of §9 runs too. Keeps the token (and key). */
  async login(password: string, options: { secure?: boolean } & CommandOptions = {}): Promise<LoginResponse> {
    const ecdhe = options.secure ? new JpayEcdhe() : undefined;
    const command: Extract<JpayCommand, { command: 'login' }> = {
      command: 'login',
      password,
      clientHandshake: ecdhe && encodeClientHandshake(ecdhe.publicPoint),
    };
    const { response, derivedKey } = await this.#run(command, { ...options, plaintext: true }, ecdhe);
    if (options.secure && response.status === 'ok' && !derivedKey) {
      throw new JpayError('HANDSHAKE_INVALID', 'secure login answered without server-handshake [JPAY-9-SH]');
    }
    if (response.status === 'ok') {
      this.#token = response.token;
      if (derivedKey) this.#key = derivedKey;
    }
    return response;
  }

  /** §8.2 logout; forgets the token and the session key whatever the answer. */
  async logout(options: CommandOptions = {}): Promise<ResponseMap['logout']> {
    try {
      return await this.#tokenCommand('logout', options);
    } finally {
      this.#token = undefined;
      this.#key = undefined;
    }
  }

  /** Runs `work` inside an admin session and always logs out afterwards. */
  async withAdminSession<T>(password: string, work: (client: this) => Promise<T>, options: { secure?: boolean } = {}): Promise<T> {
    const login = await this.login(password, options);
    if (login.status !== 'ok') {
      throw new JpayError('NOT_LOGGED_IN', `login answered ${login.status}`);
    }
    try {
      return await work(this);
    } finally {
      await this.logout().catch(() => undefined);
    }
  }

  async changePassword(password: string, newPassword: string, options: CommandOptions = {}): Promise<ResponseMap['changepassword']> {
    return this.#execute({ command: 'changepassword', token: this.#requireToken(), password, newPassword }, options);
  }

  async updateConfiguration(options: CommandOptions = {}): Promise<ResponseMap['updateconfiguration']> {
    return this.#tokenCommand('updateconfiguration', options);
  }

  async loadWorkKeys(options: CommandOptions = {}): Promise<ResponseMap['loadworkkeys']> {
    return this.#tokenCommand('loadworkkeys', options);
  }

  async loadMasterKeys(options: CommandOptions = {}): Promise<ResponseMap['loadmasterkeys']> {
    return this.#tokenCommand('loadmasterkeys', options);
  }

  async testConnection(options: CommandOptions = {}): Promise<ResponseMap['testconnection']> {
    return this.#tokenCommand('testconnection', options);
  }

  async getParameters(options: CommandOptions = {}): Promise<ResponseMap['getparameters']> {
    return this.#tokenCommand('getparameters', options);
  }

  /** §10 runreset: keepalives carry `resetConnected`; abort via `signal` answers the next one `cancelled`. */
  async runReset(options: CommandOptions = {}): Promise<ResponseMap['runreset']> {
    return this.#tokenCommand('runreset', options);
  }

  /** §8.15 sethostkey. The key material travels only over a secure session ("Следует использовать шифрацию"). */
  async setHostKey(name: string, material: string, options: CommandOptions = {}): Promise<ResponseMap['sethostkey']> {
    if (!this.#key || options.plaintext) {
      throw new JpayError('NOT_ENCRYPTED_SESSION', 'sethostkey requires a secure session [JPAY-8.15]');
    }
    return this.#execute({ command: 'sethostkey', token: this.#requireToken(), name, material }, options);
  }

  // ---- password-protected and open commands (§7, §8.11–8.14) ---------------------------------

  async report(password: string, reportType: ReportType, options: CommandOptions = {}): Promise<ResponseMap['report']> {
    return this.#execute({ command: 'report', password, reportType }, options);
  }

  /** §8.12; `force` (aQsi, CFT acquirer after error 13) is rejected for the JPAY dialect. */
  async settlement(password: string, settlementOptions: { force?: boolean } & CommandOptions = {}): Promise<ResponseMap['settlement']> {
    if (settlementOptions.force && this.dialect !== 'aqsi') {
      throw new JpayError('INVALID_ARGUMENT', 'settlement force exists only in the aqsi dialect', {
        field: 'force',
      });
    }
    return this.#execute({ command: 'settlement', password, force: settlementOptions.force }, settlementOptions);
  }

  async clear(password: string, options: CommandOptions = {}): Promise<ResponseMap['clear']> {
    return this.#execute({ command: 'clear', password }, options);
  }

  async resetPassword(options: CommandOptions = {}): Promise<ResponseMap['resetpassword']> {
    return this.#execute({ command: 'resetpassword' }, options);
  }

  // ---- transaction (§8.9, §8.10) ---------------------------------------------------------------

  /**
   * Runs a transaction and maps the answer to an outcome. Invalid requests and `BUSY` throw (nothing
   * was written: the `reject-request` reaction); once the command may have reached the application
   * every failure is `unknown` (recover with `recoverTransaction`), never `error` and never a throw
   * ([PAYORCH-AFTER-SEND]).
   */
  async transaction(request: TransactionRequest, options: CommandOptions = {}): Promise<TransactionResult> {
    const command: Extract<JpayCommand, { command: 'transaction' }> = {
      command: 'transaction',
      ...request,
    };
    encodeCommand(command); // validate before taking the connection
    try {
      const { response } = await this.#run(command, options);
      return transactionOutcome(response);
    } catch (error) {
      if (error instanceof JpayError && error.code === 'CONNECT_FAILED') return { outcome: 'error', error };
      if (error instanceof JpayError && error.reaction !== 'reject-request') return unknownOutcome(error);
      throw error;
    }
  }

  /** Low-level: any command, response decoded. Tokens are the caller's business here. */
  execute<C extends CommandName>(command: Extract<JpayCommand, { command: C }>, options: CommandOptions = {}): Promise<ResponseMap[C]> {
    return this.#execute(command, options);
  }

  // ---- internals -------------------------------------------------------------------------------

  #requireToken(): string {
    if (this.#token === undefined) throw new JpayError('NOT_LOGGED_IN', 'login first (§6)');
    return this.#token;
  }

  async #tokenCommand<C extends TokenCommandName>(command: C, options: CommandOptions): Promise<ResponseMap[C]> {
    const request = { command, token: this.#requireToken() } as Extract<JpayCommand, { command: C }>;
    return this.#execute(request, options);
  }

  async #execute<C extends CommandName>(command: Extract<JpayCommand, { command: C }>, options: CommandOptions): Promise<ResponseMap[C]> {
    const { response } = await this.#run(command, options);
    // A rejected token means admin mode ended on the terminal side.
    if (response.status === 'notauthorized' && 'token' in command) this.#token = undefined;
    return response;
  }

  async #run<C extends CommandName>(
    command: Extract<JpayCommand, { command: C }>,
    options: CommandOptions,
    loginEcdhe?: JpayEcdhe,
  ): Promise<{ response: ResponseMap[C]; derivedKey?: JpaySessionKey }> {
    if (this.#busy) throw new JpayError('BUSY', 'another command is running [JPAY-8-ONE]');
    const request = encodeCommand(command);
    this.#busy = true;
    let transport: JpayTransport | undefined;
    try {
      try {
        transport = await this.options.connect();
      } catch (cause) {
        if (cause instanceof JpayError && cause.code === 'CONNECT_FAILED') throw cause;
        throw new JpayError('CONNECT_FAILED', 'could not connect to the banking application', {}, { cause });
      }
      const result = await runExchange(transport, {
        command: command.command,
        request,
        key: options.plaintext ? undefined : this.#key,
        loginEcdhe,
        handlers: mergeHandlers(this.options.handlers, options.handlers),
        onEvent: this.options.onEvent,
        signal: options.signal,
        idleTimeoutMs: this.options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
        maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      });
      try {
        return {
          response: decodeResponse(command.command, result.root),
          derivedKey: result.derivedKey,
        };
      } catch (error) {
        // The command was answered: an answer we cannot read is an unknown outcome [PAYORCH-AFTER-SEND].
        throw afterSendError(error);
      }
    } finally {
      transport?.close();
      this.#busy = false;
    }
  }
}
