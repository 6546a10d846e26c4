import type { Duplex } from 'node:stream';

import type { RelayPort } from '@payorch/joinproto';

/**
 * The contract between the operations layer and a terminal, whatever its protocol.
 * Framework-free: implemented per protocol on top of @payorch/joinproto, @payorch/jpay and
 * @payorch/ssi-ecr; hosted by the device connector (one driver per terminal, one command at a time).
 */

export const OPERATION_TYPES = [
  'purchase',
  'purchase_with_cashback',
  'refund',
  'void',
  'partial_void',
  'preauth',
  'preauth_capture',
  'preauth_cancel',
  'cash_withdrawal',
  'cash_deposit',
  'balance_inquiry',
  'pin_change',
  'card_check',
  'sbp_payment',
  'sbp_refund',
  'settlement',
  'report_x',
  'report_z',
  'load_keys',
  'load_config',
  'update_app',
  'upload_logs',
  'echo',
  'terminal_info',
] as const;
export type OperationType = (typeof OPERATION_TYPES)[number];

export type DriverProtocol = 'JOINPROTO' | 'JPAY' | 'SSI_ECR';

/** Protocol ids of an operation (Joinproto DF01, SSI transactionUid/invoiceNum, JPAY seq/receipt number, RRN…). */
export type ProtocolRefs = Record<string, string | number | boolean | null>;

export interface OperationCommand {
  operationId: string;
  type: OperationType;
  /** Minor units. */
  amount?: number;
  cashbackAmount?: number;
  /** ISO 4217 alphabetic code. */
  currency?: string;
  /** For refund / void / capture / partial void: what the original operation recorded. */
  original?: {
    operationId: string;
    type: OperationType;
    amount?: number;
    rrn?: string;
    approvalCode?: string;
    protocolRefs?: ProtocolRefs;
  };
  /** Protocol-specific extras validated by the capability matrix (e.g. department, manual entry is never accepted). */
  options?: Record<string, unknown>;
}

export type OperationProgress =
  | { kind: 'status'; subStatus: 'waiting_card' | 'waiting_pin' | 'connecting_host' | 'printing' | 'take_card' | 'processing' | string; text?: string }
  | { kind: 'display'; text: string }
  | { kind: 'qr'; action: 'show' | 'hide'; url?: string };

export type FinalState = 'approved' | 'declined' | 'canceled' | 'failed' | 'unknown';

export interface OperationOutcome {
  /** `failed` only when the terminal provably did not act (nothing sent, or a definitive protocol rejection). */
  state: FinalState;
  reason?: string;
  /** Protocol-neutral reason from the protocol's result-code table (libs/drivers/src/result-codes, docs/protocols/result-codes.md). */
  reasonCode?: string;
  responseCode?: string;
  responseMessage?: string;
  /** First 6 / last 4 at most. */
  maskedPan?: string;
  rrn?: string;
  approvalCode?: string;
  /** Minor units as the terminal reported them. */
  amount?: number;
  protocolRefs?: ProtocolRefs;
  receipt?: { text?: string; fields?: Record<string, unknown> };
  /** Protocol-neutral extra data (report totals, balance, terminal info…). No secrets, no full PAN. */
  data?: Record<string, unknown>;
}

export interface ExecuteHooks {
  /**
   * Called with the protocol ids assigned to the command before any byte is sent. The caller
   * persists them (and the SENT state) first, so a crash after sending can still be recovered.
   */
  beforeSend(refs: ProtocolRefs): Promise<void>;
  onProgress(progress: OperationProgress): void;
  /**
   * Called with each protocol frame the command exchanges with the terminal, in wire order, already masked
   * (see OperationFrame); absent = frames are not decoded at all. Must not throw or block.
   */
  onFrame?(frame: OperationFrame): void;
}

/**
 * One protocol frame of a command, log-safe: rendered by the protocol library's `maskFrame` (Joinproto TLVs
 * with DF04 masked and receipt / relay / unknown data reduced to a length; JPAY XML with PANs masked, EMV card
 * tags, passwords, tokens, keys and handshakes redacted, encrypted packets as their envelope only; SSI JSON
 * with PANs masked and track, PIN, CVV, expiry, cardholder and key fields redacted), then any Luhn-valid card
 * number left scrubbed, then cut to MAX_MASKED_FRAME_CHARS. Never a full PAN, track data, PIN block, key or password.
 */
export interface OperationFrame {
  /** `out`: we sent it to the terminal; `in`: the terminal sent it. */
  direction: 'out' | 'in';
  protocol: DriverProtocol;
  /** What the frame is: Joinproto command name and code, JPAY root element, SSI method. */
  summary: string;
  /** The frame's content, masked. */
  masked: string;
}

export type CancelResult = 'requested' | 'too_late' | 'not_running';

export interface TerminalDriver {
  readonly protocol: DriverProtocol;
  /**
   * Which device this driver reaches (DriverConfig.device): stored with every command it sends, and recovery asks a
   * driver only about commands sent through the same device — another device's "no such command" proves nothing.
   */
  readonly device?: string;
  /** Runs one command; resolves with an outcome (never rejects once beforeSend has been called). */
  execute(command: OperationCommand, hooks: ExecuteHooks): Promise<OperationOutcome>;
  /** Asks the terminal to abandon the running command (Joinproto 90, JPAY keepalive → cancelled, SSI Interrupt). */
  cancel(operationId: string): Promise<CancelResult>;
  /** Decides the true outcome of an operation left `unknown` (Joinproto 95, SSI GetLastResult/GetResultByUid, JPAY report). */
  recover(command: OperationCommand, refs: ProtocolRefs): Promise<OperationOutcome>;
  /** Identification and parameters (getparameters / GetTerminalInfo / Joinproto 99 data). */
  terminalInfo(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Opens a byte link to the terminal (a tunnel stream in production, a TCP socket in tests). */
export type LinkFactory = () => Promise<Duplex>;

export interface DriverConfig {
  terminalRowId: string;
  /**
   * A fingerprint of everything that decides which physical device the link reaches (the device connector's
   * `deviceKey`: the terminal's agent, connection, protocol and dialect). Absent: not tracked (tests).
   */
  device?: string;
  protocol: DriverProtocol;
  dialect: string | null;
  terminalId: string | null;
  merchantId: string | null;
  department: string | null;
  /** Decrypted terminal credentials (admin password…); never logged. */
  credentials: Record<string, string> | null;
  /**
   * Opens the byte link. It must resolve only once the link is established: a rejection means that
   * nothing was sent (the operation is then `failed`, not `unknown`).
   */
  link: LinkFactory;
  /**
   * Joinproto only: the relay (91–94) for terminals that reach their processing centre through the
   * till. The device connector passes its egress-checked RelayPort; absent = every 91 is refused.
   */
  relay?: RelayPort;
  /**
   * JPAY only: run every command inside a secure admin session (§9: login with ECDHE on secp256r1, then
   * AES-256-GCM). The key is agreed per session, held in memory only and forgotten at logout. Needs
   * `credentials.adminPassword` (the login's password).
   */
  encryption?: { enabled: boolean };
  /** IANA zone of the terminal's clock (the store's zone); JPAY recovery compares log times with it. */
  timeZone?: string | null;
  /** Timeouts and pacing; defaults are the protocol libraries' production values. */
  options?: DriverOptions;
}

export interface DriverOptions {
  /** Longest wait for a bank command's answer (Joinproto per-command timeout, JPAY idle timeout, SSI operation timeout). */
  commandTimeoutMs?: number;
  /** SSI: GetStatus polling interval and minimum gap between requests (tests use 0–5 ms). */
  pollIntervalMs?: number;
  /** SSI: how long to keep reconnecting after the link drops mid-operation before reporting `unknown`. */
  reconnectWindowMs?: number;
  /**
   * Joinproto DF01 source: persist a counter in production (the connector's is the terminal's `protocolSequence`); the
   * driver sends what it gives (the session skips ids still in doubt). Default: a random six-digit id that is not among
   * the driver's 1,024 most recent ones.
   */
  nextJoinprotoId?: () => string | Promise<string>;
}
