import fc from 'fast-check';

import type { Direction } from '../commands';
import type { Message } from '../messages';

/** fast-check arbitraries for valid messages of every type (STYLE C8 property 1). */
const digits = (length: number) => fc.stringMatching(new RegExp(`^[0-9]{${length}}$`));
const id = fc.stringMatching(/^[\x20-\x7e]{6}$/);
const amount = fc.integer({ min: 0, max: 999_999_999_999 });
const text = fc.stringMatching(/^[\x20-\x7e]{0,40}$/);
const code = fc.oneof(fc.constant('XX'), digits(3));
const maskedPan = fc.stringMatching(/^[0-9]{6}\*{6,9}[0-9]{4}$/);
const bytes = fc.uint8Array({ maxLength: 300 });
const department = digits(2);

const bankResult = {
  id,
  responseCode: code,
  message: text,
  maskedPan,
  amount,
  cashback: amount,
  authCode: fc.stringMatching(/^[A-Za-z0-9]{6}$/),
  receipt: bytes,
  receiptNo: digits(6),
  shiftNo: digits(6),
  merchantId: digits(15),
  terminalId: fc.stringMatching(/^[A-Z0-9]{8}$/),
  time: digits(6),
  rrn: digits(12),
  date: digits(6),
};

function typed<T extends Message['type']>(type: T, fields: Record<string, fc.Arbitrary<unknown>>, required: string[]) {
  return fc.record(fields, { requiredKeys: required }).map((record) => ({ type, ...record }) as unknown as Message);
}

const BANK = ['Purchase', 'Preauth', 'Completion', 'Cancel', 'Refund', 'CashAdvance', 'CashDeposit', 'CloseDay', 'Balance', 'PinChange', 'LoadKeys'] as const;

/** Every message the till sends, and every message the terminal sends. */
export const arbitraryTillMessage: fc.Arbitrary<Message> = fc.oneof(
  typed('PurchaseRequest', { id, amount, cashback: amount, department }, ['id', 'amount']),
  typed('PreauthRequest', { id, amount, department }, ['id', 'amount']),
  typed('CompletionRequest', { id, amount, department, rrn: digits(12) }, ['id', 'amount', 'rrn']),
  typed('CancelRequest', { id, department, rrn: digits(12) }, ['id', 'rrn']),
  typed('RefundRequest', { id, amount, department, originalRrn: digits(12), originalDate: digits(8), originalReceiptNo: digits(6) }, ['id', 'amount']),
  typed('CashAdvanceRequest', { id, amount, department }, ['id', 'amount']),
  typed('CashDepositRequest', { id, amount, department }, ['id', 'amount']),
  ...(['CloseDay', 'Balance', 'PinChange', 'LoadKeys'] as const).map((name) => typed(`${name}Request`, { id, department }, ['id'])),
  ...(['LoadConfig', 'UpdateApp', 'UploadLogs', 'Interrupt', 'Repeat'] as const).map((name) => typed(`${name}Request`, { id }, ['id'])),
  typed('EchoResponse', { id }, ['id']),
  typed('CardCheckResponse', { id, responseCode: code, message: text }, ['id', 'responseCode']),
  typed('OpenConnectionResponse', { id, connectionId: digits(10) }, ['id', 'connectionId']),
  typed('OpenConnectionResponse', { id, responseCode: code, message: text }, ['id', 'responseCode']),
  typed('SendDataResponse', { id, sentBytes: fc.nat() }, ['id', 'sentBytes']),
  typed('ReceiveDataResponse', { id, data: bytes }, ['id', 'data']),
  typed('ReceiveDataResponse', { id, responseCode: code, message: text }, ['id', 'responseCode']),
  typed('CloseConnectionResponse', { id }, ['id']),
  typed('ErrorResponse', { responseCode: code, message: text }, ['responseCode']),
);

export const arbitraryTerminalMessage: fc.Arbitrary<Message> = fc.oneof(
  ...BANK.map((name) => typed(`${name}Response`, bankResult, ['id', 'responseCode'])),
  typed('LoadConfigResponse', { id, responseCode: code, message: text }, ['id', 'responseCode']),
  typed('UpdateAppResponse', { id, responseCode: code, message: text }, ['id', 'responseCode']),
  typed('UploadLogsResponse', { id, data: bytes }, ['id', 'data']),
  typed('InterruptResponse', { id, responseCode: code, message: text }, ['id']),
  typed('RepeatResponse', { responseCode: code, message: text }, ['responseCode']),
  typed('EchoRequest', { id }, ['id']),
  typed('CardCheckRequest', { id, maskedPan, date: digits(6) }, ['id', 'maskedPan']),
  typed('OpenConnectionRequest', { id, protocol: fc.constantFrom('tcp', 'http'), address: fc.stringMatching(/^[a-z0-9.]{1,30}:[0-9]{1,5}$/) }, [
    'id',
    'protocol',
    'address',
  ]),
  typed('SendDataRequest', { id, connectionId: digits(10), data: bytes }, ['id', 'connectionId', 'data']),
  typed('ReceiveDataRequest', { id, connectionId: digits(10), maxBytes: fc.integer({ min: 1, max: 65535 }) }, ['id', 'connectionId', 'maxBytes']),
  typed('CloseConnectionRequest', { id, connectionId: digits(10) }, ['id', 'connectionId']),
  typed('ErrorResponse', { command: fc.constantFrom('73', '50', '00'), id, responseCode: fc.constant('XX'), message: fc.constant('UNKNOWN COMMAND') }, [
    'command',
    'id',
    'responseCode',
    'message',
  ]),
);

/** A valid message with the direction it travels in. */
export const arbitraryMessage: fc.Arbitrary<{ message: Message; direction: Direction }> = fc.oneof(
  arbitraryTillMessage.map((message) => ({ message, direction: 'till->terminal' as const })),
  arbitraryTerminalMessage.map((message) => ({ message, direction: 'terminal->till' as const })),
);
