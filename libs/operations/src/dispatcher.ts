import type { TerminalCommandDispatcher } from '@payorch/domain';

/** The interface lives with the commands it carries (@payorch/domain); re-exported for the apps' DI wiring below. */
export type { TerminalCommandDispatcher } from '@payorch/domain';

/** DI token for the dispatcher in Nest apps. */
export const TERMINAL_COMMAND_DISPATCHER = Symbol('TERMINAL_COMMAND_DISPATCHER');

/** A dispatcher for apps started without a command bus: every terminal is offline. */
export const offlineDispatcher: TerminalCommandDispatcher = {
  dispatch: async () => ({ ok: false, code: 'TERMINAL_OFFLINE', message: 'no command bus is configured' }),
};
