import type { Duplex } from 'node:stream';

import { DriverError } from './capabilities';
import type { DriverConfig, OperationCommand, OperationOutcome } from './types';

/** ISO 4217 alphabetic → numeric (SSI sends numeric codes; JPAY only when it differs from the terminal's default). */
export const CURRENCY_NUMERIC: Readonly<Record<string, string>> = {
  AMD: '051',
  AZN: '944',
  BYN: '933',
  CNY: '156',
  EUR: '978',
  GBP: '826',
  GEL: '981',
  KGS: '417',
  KZT: '398',
  MDL: '498',
  RUB: '643',
  TJS: '972',
  TRY: '949',
  UAH: '980',
  USD: '840',
  UZS: '860',
};

export function numericCurrency(currency: string | undefined): string {
  if (currency === undefined) throw new DriverError('INVALID_COMMAND', 'currency is required');
  if (/^\d{3}$/.test(currency)) return currency;
  const code = CURRENCY_NUMERIC[currency.toUpperCase()];
  if (code === undefined) throw new DriverError('INVALID_COMMAND', `currency ${currency} is not known to the driver`, { field: 'currency' });
  return code;
}

/**
 * Commands that change nothing on the terminal (an X report, its parameters, an echo): a lost answer is `failed`, asked
 * again at will, never an UNKNOWN that keeps new work off the terminal until a person resolves it.
 */
export const READ_ONLY_TYPES: ReadonlySet<OperationCommand['type']> = new Set(['report_x', 'terminal_info', 'echo']);

export function requireAmount(command: OperationCommand, what = 'amount'): number {
  const amount = what === 'cashbackAmount' ? command.cashbackAmount : command.amount;
  if (amount === undefined || !Number.isSafeInteger(amount) || amount < 0) {
    throw new DriverError('INVALID_COMMAND', `${command.type} needs a non-negative integer ${what} (minor units)`, { field: what });
  }
  return amount;
}

export function requireOriginal(command: OperationCommand): NonNullable<OperationCommand['original']> {
  if (command.original === undefined) {
    throw new DriverError('INVALID_COMMAND', `${command.type} needs the original operation`, { field: 'original' });
  }
  return command.original;
}

export function refString(refs: Record<string, unknown> | undefined, key: string): string | undefined {
  const value = refs?.[key];
  return typeof value === 'string' && value !== '' ? value : typeof value === 'number' ? String(value) : undefined;
}

export function adminPassword(config: DriverConfig): string {
  const password = config.credentials?.adminPassword;
  if (!password) {
    throw new DriverError('MISSING_CREDENTIALS', `this ${config.protocol} command needs the terminal's admin password (credentials.adminPassword)`);
  }
  return password;
}

type Compact<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>;
};

/** Drops undefined fields so outcomes stay compact and JSON-stable. */
export function compact<T extends object>(value: T): Compact<T> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (v !== undefined) out[key] = v;
  return out as Compact<T>;
}

export function failedBeforeSend(error: unknown): OperationOutcome {
  const message = error instanceof Error ? error.message : String(error);
  return { state: 'failed', reason: `not sent: ${message}` };
}

/** Opens the link; a failure is tagged so drivers can tell "not sent" from a loss after sending. */
export async function openLink(config: DriverConfig): Promise<Duplex> {
  try {
    return await config.link();
  } catch (error) {
    throw new LinkError(error instanceof Error ? error.message : String(error));
  }
}

/**
 * The links a driver has open, so that `close()` stops whatever runs on them at once: every open stream
 * is destroyed (a command in flight ends `unknown` once sent — recovery asks the terminal — or `failed`
 * if it was not sent yet), `signal` aborts waits that do not read a stream (SSI status polling), and no
 * link opens any more (a closed driver sends nothing).
 */
export class DriverLinks {
  private readonly controller = new AbortController();
  private readonly streams = new Set<Duplex>();

  constructor(private readonly config: DriverConfig) {}

  /** Aborted by `close()`. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get closed(): boolean {
    return this.controller.signal.aborted;
  }

  async open(): Promise<Duplex> {
    if (this.closed) throw new LinkError('the driver is closed');
    const stream = await openLink(this.config);
    if (this.closed) {
      stream.destroy();
      throw new LinkError('the driver is closed');
    }
    this.streams.add(stream);
    stream.once('close', () => this.streams.delete(stream));
    return stream;
  }

  close(reason = 'the driver was closed'): void {
    if (!this.closed) this.controller.abort(new Error(reason));
    for (const stream of this.streams) stream.destroy();
    this.streams.clear();
  }
}

export class LinkError extends Error {
  constructor(message: string) {
    super(`link to the terminal could not be opened: ${message}`);
    this.name = 'LinkError';
  }
}

export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));
