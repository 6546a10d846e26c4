/**
 * Commands (client → application), §8. `encodeCommand` validates what the spec states about each
 * parameter (named checks below) before anything reaches the wire; `decodeCommand` is the mirror used
 * by the simulator and the capture decoder, liberal in what it accepts.
 */
import { decodeAmount, encodeAmount } from './amounts';
import { boolText, compact, mapOptional, parseBool, requiredText } from './codec-util';
import { JpayError } from './errors';
import {
  COMMAND_NAMES,
  type CommandName,
  type JpayCommand,
  type ManualCardEntry,
  type ReportType,
  type TransactionRequest,
  type TransactionType,
} from './messages';
import { el, opt, textOf, type XmlElement } from './xml';

const COMMANDS = new Set<string>(COMMAND_NAMES);
const TRANSACTION_TYPES = new Set<string>(['purchase', 'refund', 'void', 'purchase-with-cashback']);

export function isCommandName(name: string): name is CommandName {
  return COMMANDS.has(name);
}

function invalid(field: string, rule: string): never {
  throw new JpayError('INVALID_ARGUMENT', `${field}: ${rule}`, { field });
}

/** [JPAY-6-PASSWORD] "пароль состоящий из 8 цифр". */
function checkPassword(value: string, field = 'password'): string {
  if (!/^\d{8}$/.test(value)) invalid(field, 'must be 8 digits [JPAY-6-PASSWORD]');
  return value;
}

/** [JPAY-6-TOKEN] the token returned by login; examples show 32 hex and 18 digits, so only non-empty. */
function checkToken(value: string): string {
  if (!/^[0-9A-Za-z]{1,64}$/.test(value)) invalid('token', 'must be the alphanumeric login token [JPAY-6-TOKEN]');
  return value;
}

function checkPattern(value: string | undefined, field: string, pattern: RegExp, rule: string): string | undefined {
  if (value !== undefined && !pattern.test(value)) invalid(field, rule);
  return value;
}

/** [JPAY-8.9-TX] the per-type parameter rules of §8.9 and §8.10. */
function checkTransaction(request: TransactionRequest): void {
  const { type } = request;
  if (!TRANSACTION_TYPES.has(type)) invalid('type', 'must be one of Appendix B [JPAY-8.9-TX]');
  if (type !== 'void' && request.amount === undefined) invalid('amount', `required for ${type} [JPAY-8.9-TX]`);
  if (type === 'void' && request.number === undefined) invalid('number', 'required for void [JPAY-8.9-TX]');
  if (type !== 'void' && request.number !== undefined) invalid('number', 'only for void [JPAY-8.9-TX]');
  if ((type === 'purchase-with-cashback') !== (request.amountOther !== undefined)) {
    invalid('amountOther', 'required for, and only for, purchase-with-cashback [JPAY-8.9-TX]');
  }
  if (request.forced !== undefined && type !== 'refund' && type !== 'void') {
    invalid('forced', 'only for refund and void [JPAY-8.9-TX]');
  }
  if (request.rrn !== undefined && type !== 'refund') invalid('rrn', 'only for refund [JPAY-8.9-TX]');
  if (request.forceSbp !== undefined && type !== 'purchase' && type !== 'refund') {
    invalid('forceSbp', 'only for purchase and refund [JPAY-8.10-SBP]');
  }
  checkPattern(request.number, 'number', /^(last|\d{1,6})$/, "must be 'last' or up to 6 digits [JPAY-8.9-TX]");
  checkPattern(request.currency, 'currency', /^\d{3}$/, 'must be ISO 4217 numeric [JPAY-8.9-TX]');
  checkPattern(request.rrn, 'rrn', /^[0-9A-Za-z]{1,12}$/, 'must be up to 12 characters [JPAY-8.9-TX]');
  const manual = request.manualEntry;
  if (manual) {
    checkPattern(manual.pan, 'pan', /^\d{12,19}$/, 'must be 12–19 digits [JPAY-8.9-TX]');
    checkPattern(manual.expiry, 'expiry', /^\d{4}$/, 'must be YYMM [JPAY-8.9-TX]');
    checkPassword(manual.password);
  }
}

function encodeTransaction(request: TransactionRequest): XmlElement {
  checkTransaction(request);
  const manual = request.manualEntry;
  return el(
    'transaction',
    [
      el('type', request.type),
      opt('currency', request.currency),
      opt('amount', request.amount === undefined ? undefined : encodeAmount(request.amount)),
      opt('amount-other', request.amountOther === undefined ? undefined : encodeAmount(request.amountOther, 'amountOther')),
      opt('rrn', request.rrn),
      opt('number', request.number),
      opt('pan', manual?.pan),
      opt('expired', manual?.expiry),
      opt('password', manual?.password),
      opt('cardholder', manual?.cardholder),
      opt('forced', boolText(request.forced)),
    ],
    { 'force-sbp': boolText(request.forceSbp) },
  );
}

/** Builds the command element. Throws `INVALID_ARGUMENT` naming the field (never its value). */
export function encodeCommand(command: JpayCommand): XmlElement {
  switch (command.command) {
    case 'login':
      return el('login', [el('password', checkPassword(command.password))], {
        'client-handshake': command.clientHandshake,
      });
    case 'logout':
    case 'updateconfiguration':
    case 'loadworkkeys':
    case 'loadmasterkeys':
    case 'testconnection':
    case 'getparameters':
    case 'runreset':
      return el(command.command, [el('token', checkToken(command.token))]);
    case 'changepassword':
      return el('changepassword', [
        el('token', checkToken(command.token)),
        el('password', checkPassword(command.password)),
        el('newpassword', checkPassword(command.newPassword, 'newPassword')),
      ]);
    case 'transaction':
      return encodeTransaction(command);
    case 'report':
      if (command.reportType !== 'brief' && command.reportType !== 'full') invalid('reportType', 'brief or full');
      return el('report', [el('password', checkPassword(command.password)), el('report-type', command.reportType)]);
    case 'settlement':
      return el('settlement', [el('password', checkPassword(command.password)), opt('force', command.force ? 'on' : undefined)]);
    case 'clear':
      return el('clear', [el('password', checkPassword(command.password))]);
    case 'resetpassword':
      return el('resetpassword');
    case 'sethostkey':
      checkPattern(command.name, 'name', /^\S{1,64}$/, 'must be a key name');
      checkPattern(command.material, 'material', /^[A-Za-z0-9+/=]+$/, 'must be base64');
      return el('sethostkey', [el('token', checkToken(command.token)), el('name', command.name), el('material', command.material)]);
  }
}

function decodeTransaction(root: XmlElement): JpayCommand {
  // §8.10 writes `<transaction type="payment" force-sbp="true" …>`: accept the attribute form too.
  const rawType = textOf(root, 'type') ?? root.attrs.type;
  const type = rawType === 'payment' ? 'purchase' : rawType;
  if (type === undefined || !TRANSACTION_TYPES.has(type)) {
    throw new JpayError('FIELD_INVALID', 'transaction type is not one of Appendix B', {
      field: 'type',
    });
  }
  const pan = textOf(root, 'pan');
  const manualEntry: ManualCardEntry | undefined =
    pan === undefined || pan === 'last'
      ? undefined
      : compact({
          pan,
          expiry: textOf(root, 'expired') ?? '',
          password: textOf(root, 'password') ?? '',
          cardholder: textOf(root, 'cardholder'),
        });
  // "pan — ... Значение last отменяет последнюю транзакцию": `pan=last` is read as `number=last`.
  const number = textOf(root, 'number') ?? (pan === 'last' ? 'last' : undefined);
  return compact({
    command: 'transaction' as const,
    type: type as TransactionType,
    amount: mapOptional(textOf(root, 'amount'), (v) => decodeAmount(v)),
    amountOther: mapOptional(textOf(root, 'amount-other'), (v) => decodeAmount(v, 'amount-other')),
    currency: textOf(root, 'currency'),
    rrn: textOf(root, 'rrn'),
    number,
    forced: parseBool(textOf(root, 'forced')),
    forceSbp: parseBool(root.attrs['force-sbp']),
    manualEntry,
  });
}

/** Reads a command element (simulator side). Throws `UNKNOWN_COMMAND` / `FIELD_*`. */
export function decodeCommand(root: XmlElement): JpayCommand {
  const name = root.name;
  if (!isCommandName(name)) {
    throw new JpayError('UNKNOWN_COMMAND', 'unknown command', { field: name.slice(0, 40) });
  }
  switch (name) {
    case 'login':
      return compact({
        command: 'login' as const,
        password: requiredText(root, 'password'),
        clientHandshake: root.attrs['client-handshake'],
      });
    case 'logout':
    case 'updateconfiguration':
    case 'loadworkkeys':
    case 'loadmasterkeys':
    case 'testconnection':
    case 'getparameters':
    case 'runreset':
      return { command: name, token: requiredText(root, 'token') };
    case 'changepassword':
      return {
        command: 'changepassword',
        token: requiredText(root, 'token'),
        password: requiredText(root, 'password'),
        newPassword: requiredText(root, 'newpassword'),
      };
    case 'transaction':
      return decodeTransaction(root);
    case 'report':
      return {
        command: 'report',
        password: requiredText(root, 'password'),
        reportType: (textOf(root, 'report-type') === 'full' ? 'full' : 'brief') as ReportType,
      };
    case 'settlement':
      return compact({
        command: 'settlement' as const,
        password: requiredText(root, 'password'),
        force: mapOptional(textOf(root, 'force'), (v) => parseBool(v) === true) || undefined,
      });
    case 'clear':
      return { command: 'clear', password: requiredText(root, 'password') };
    case 'resetpassword':
      return { command: 'resetpassword' };
    case 'sethostkey':
      return {
        command: 'sethostkey',
        token: requiredText(root, 'token'),
        name: requiredText(root, 'name'),
        material: requiredText(root, 'material'),
      };
  }
}
