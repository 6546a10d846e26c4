/**
 * Command types (DF00, spec 2 «Тип команды») with who starts them: the till (касса) or the terminal.
 * Bank commands need a card or the processing centre and take minutes; service commands take seconds
 * (spec 4 «Служебные команды», 5 «Банковские операции»).
 */
export const COMMANDS = {
  Purchase: { code: '01', initiator: 'till', group: 'bank', section: '5.1' },
  CardCheck: { code: '02', initiator: 'terminal', group: 'bank', section: '5.2' },
  Preauth: { code: '03', initiator: 'till', group: 'bank', section: '5.3' },
  Completion: { code: '04', initiator: 'till', group: 'bank', section: '5.4' },
  Cancel: { code: '05', initiator: 'till', group: 'bank', section: '5.5' },
  Refund: { code: '06', initiator: 'till', group: 'bank', section: '5.7' },
  CashAdvance: { code: '07', initiator: 'till', group: 'bank', section: '5.8' },
  CashDeposit: { code: '08', initiator: 'till', group: 'bank', section: '5.9' },
  CloseDay: { code: '09', initiator: 'till', group: 'bank', section: '5.6' },
  LoadConfig: { code: '10', initiator: 'till', group: 'service', section: '4.6' },
  UpdateApp: { code: '11', initiator: 'till', group: 'service', section: '4.7' },
  Balance: { code: '12', initiator: 'till', group: 'bank', section: '5.10' },
  PinChange: { code: '13', initiator: 'till', group: 'bank', section: '5.11' },
  LoadKeys: { code: '14', initiator: 'till', group: 'bank', section: '5.12' },
  Interrupt: { code: '90', initiator: 'till', group: 'service', section: '4.10' },
  OpenConnection: { code: '91', initiator: 'terminal', group: 'service', section: '4.2' },
  SendData: { code: '92', initiator: 'terminal', group: 'service', section: '4.3' },
  ReceiveData: { code: '93', initiator: 'terminal', group: 'service', section: '4.4' },
  CloseConnection: { code: '94', initiator: 'terminal', group: 'service', section: '4.5' },
  Repeat: { code: '95', initiator: 'till', group: 'service', section: '4.9' },
  UploadLogs: { code: '96', initiator: 'till', group: 'service', section: '4.8' },
  Echo: { code: '99', initiator: 'terminal', group: 'service', section: '4.1' },
} as const;

export type CommandName = keyof typeof COMMANDS;
export type CommandCode = (typeof COMMANDS)[CommandName]['code'];
export type Party = 'till' | 'terminal';
/** Who sends a frame: decoding needs it, since a request and its answer may carry the same tags (99, 90). */
export type Direction = 'till->terminal' | 'terminal->till';

/** Commands the till starts: those a TillSession can execute. */
export type TillCommandName = {
  [K in CommandName]: (typeof COMMANDS)[K]['initiator'] extends 'till' ? K : never;
}[CommandName];
export type TerminalCommandName = Exclude<CommandName, TillCommandName>;

const BY_CODE: ReadonlyMap<string, CommandName> = new Map((Object.keys(COMMANDS) as CommandName[]).map((name) => [COMMANDS[name].code, name]));

export function commandByCode(code: string): CommandName | undefined {
  return BY_CODE.get(code);
}

export function senderOf(direction: Direction): Party {
  return direction === 'till->terminal' ? 'till' : 'terminal';
}

export function isTillCommand(name: CommandName): name is TillCommandName {
  return COMMANDS[name].initiator === 'till';
}
