import { isUuid, type OperationCommandCopy, type TerminalCommand, type TerminalCommandReply } from '@payorch/domain';

const KINDS = new Set<TerminalCommand['kind']>(['operation.execute', 'operation.cancel', 'operation.recover', 'terminal.refresh_info']);

/** A command read back from Redis, or null when it is not one. Ids must be UUIDs. */
export function parseCommand(raw: string | undefined): TerminalCommand | null {
  if (!raw) return null;
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (!value || typeof value !== 'object' || !KINDS.has(value.kind as TerminalCommand['kind'])) return null;
  if (typeof value.tenantId !== 'string' || !isUuid(value.tenantId)) return null;
  if (typeof value.terminalId !== 'string' || !isUuid(value.terminalId)) return null;
  if (value.kind === 'terminal.refresh_info') return { kind: value.kind, tenantId: value.tenantId, terminalId: value.terminalId };
  if (typeof value.operationId !== 'string' || !isUuid(value.operationId)) return null;
  if (value.kind === 'operation.execute') {
    const command = commandCopy(value.command);
    return {
      kind: value.kind,
      tenantId: value.tenantId,
      terminalId: value.terminalId,
      operationId: value.operationId,
      ...(value.replyWhen === 'queued' ? { replyWhen: 'queued' as const } : {}),
      ...(command === undefined ? {} : { command }),
    };
  }
  return {
    kind: value.kind as Exclude<TerminalCommand['kind'], 'terminal.refresh_info'>,
    tenantId: value.tenantId,
    terminalId: value.terminalId,
    operationId: value.operationId,
  };
}

const minorUnits = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/**
 * An `operation.execute`'s copy of its command, or undefined when there is none or it is not well-formed: the
 * command still runs, and its executor reads the row instead (the copy is an optimisation, never needed).
 */
function commandCopy(value: unknown): OperationCommandCopy | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const { type, amount, cashbackAmount, currency } = value as Record<string, unknown>;
  if (typeof type !== 'string' || !/^[a-z_]{1,40}$/.test(type)) return undefined;
  if ((amount !== undefined && !minorUnits(amount)) || (cashbackAmount !== undefined && !minorUnits(cashbackAmount))) return undefined;
  if (currency !== undefined && (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency))) return undefined;
  return {
    type,
    ...(amount === undefined ? {} : { amount }),
    ...(cashbackAmount === undefined ? {} : { cashbackAmount }),
    ...(currency === undefined ? {} : { currency }),
  };
}

export function parseReply(raw: string | undefined): TerminalCommandReply {
  try {
    const value = JSON.parse(raw ?? '') as TerminalCommandReply;
    if (value && typeof value === 'object' && typeof value.ok === 'boolean') return value;
  } catch {
    // fall through
  }
  return { ok: false, code: 'INTERNAL', message: 'malformed reply' };
}

export const offline = (message: string): TerminalCommandReply => ({ ok: false, code: 'TERMINAL_OFFLINE', message });
