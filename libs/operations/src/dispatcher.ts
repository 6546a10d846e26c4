import type { TerminalCommand, TerminalCommandReply } from '@payorch/domain';

/**
 * Delivers a TerminalCommand to whoever holds the terminal and returns its reply. Production: the Redis
 * command bus (@payorch/command-bus RedisTerminalCommandDispatcher, structurally identical). For
 * `operation.execute` the reply comes when the operation has finished (or could not start).
 */
export interface TerminalCommandDispatcher {
  dispatch(command: TerminalCommand): Promise<TerminalCommandReply>;
  /** false while the bus cannot take a command at all (Redis down): new work is refused with 503 instead of accepted and failed. */
  isAvailable?(): boolean;
}

/** DI token for the dispatcher in Nest apps. */
export const TERMINAL_COMMAND_DISPATCHER = Symbol('TERMINAL_COMMAND_DISPATCHER');

/** A dispatcher for apps started without a command bus: every terminal is offline. */
export const offlineDispatcher: TerminalCommandDispatcher = {
  dispatch: async () => ({ ok: false, code: 'TERMINAL_OFFLINE', message: 'no command bus is configured' }),
};
