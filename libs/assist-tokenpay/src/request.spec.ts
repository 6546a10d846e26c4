import { AssistValidationError, type ValidationIssueCode } from './errors';
import { buildTokenPayFields, type MerchantCredentials } from './request';
import { APPLE_PAY_TOKEN, GOOGLE_PAY_TOKEN, MERCHANT, SAMSUNG_PAY_TOKEN, validRequest } from './testing/fixtures';

function issuesOf(overrides: Parameters<typeof validRequest>[0], credentials: MerchantCredentials = MERCHANT, extended = false) {
  try {
    buildTokenPayFields(credentials, validRequest(overrides), { extendedTokenTypes: extended });
  } catch (error) {
    if (error instanceof AssistValidationError) return error.issues.map((i) => `${i.field}:${i.code}`);
    throw error;
  }
  return [];
}

const long = (n: number) => 'я'.repeat(n);
const recurring = { recurringIndicator: 1, recurringMinAmount: '1.00', recurringMaxAmount: '500,00', recurringPeriod: 30, recurringMaxDate: '31.12.2030' };
const item = { product: 'Чай', price: '50.50', quantity: 2, amount: '101.00' };

describe(buildTokenPayFields.name, () => {
  it('serialises a valid request in the table order and spec casing, Format=5', () => {
    const fields = buildTokenPayFields(MERCHANT, validRequest({ delay: 1, clientIp: '10.0.0.1', tax: 'Vat20' }));
    expect(fields).toEqual([
      ['Merchant_ID', '679471'],
      ['Login', 'sandbox_login'],
      ['Password', 'sandboxPass1'],
      ['OrderNumber', 'ORD-0001'],
      ['OrderAmount', '101.00'],
      ['OrderCurrency', 'RUB'],
      ['Delay', '1'],
      ['ClientIP', '10.0.0.1'],
      ['TokenType', '1'],
      ['PaymentToken', APPLE_PAY_TOKEN],
      ['Lastname', 'Иванов'],
      ['Firstname', 'Иван'],
      ['Email', 'ivan@example.com'],
      ['Tax', 'vat20'],
      ['Format', '5'],
    ]);
  });

  it('sends the Recurring* group and ChequeItems JSON when valid', () => {
    const fields = new Map(
      buildTokenPayFields(MERCHANT, validRequest({ ...recurring, chequeItems: [item], fpMode: 4, taxationSystem: 0, generateReceipt: 1 })),
    );
    expect(fields.get('RecurringIndicator')).toBe('1');
    expect(fields.get('RecurringPeriod')).toBe('30');
    expect(fields.get('RecurringMaxAmount')).toBe('500,00');
    expect(JSON.parse(fields.get('ChequeItems') ?? '')).toEqual([item]);
    expect([fields.get('FPMode'), fields.get('TaxationSystem'), fields.get('GenerateReceipt')]).toEqual(['4', '0', '1']);
  });

  it('accepts every spec token type with its token shape', () => {
    expect(issuesOf({ tokenType: 2, paymentToken: GOOGLE_PAY_TOKEN })).toEqual([]);
    expect(issuesOf({ tokenType: 3, paymentToken: SAMSUNG_PAY_TOKEN })).toEqual([]);
  });

  // [rule, overrides, expected "Field:CODE"]
  const cases: ReadonlyArray<readonly [string, Parameters<typeof validRequest>[0], string]> = [
    ['OrderNumber required', { orderNumber: '' }, 'OrderNumber:REQUIRED'],
    ['OrderNumber ≤ 128 characters', { orderNumber: long(129) }, 'OrderNumber:TOO_LONG'],
    ['OrderNumber no control characters', { orderNumber: 'A\nB' }, 'OrderNumber:INVALID_CHARACTERS'],
    ['OrderAmount required', { orderAmount: undefined }, 'OrderAmount:REQUIRED'],
    ['OrderAmount is a string', { orderAmount: 10.5 }, 'OrderAmount:INVALID_TYPE'],
    ['OrderAmount digits and one separator', { orderAmount: '10.5.1' }, 'OrderAmount:INVALID_FORMAT'],
    ['OrderAmount no sign', { orderAmount: '-1.00' }, 'OrderAmount:INVALID_FORMAT'],
    ['OrderAmount ≤ 15 digits', { orderAmount: '1234567890123.456' }, 'OrderAmount:TOO_MANY_DIGITS'],
    ['OrderAmount > 0', { orderAmount: '0,00' }, 'OrderAmount:NOT_POSITIVE'],
    ['OrderCurrency 3 upper-case letters', { orderCurrency: 'rub' }, 'OrderCurrency:INVALID_CHARACTERS'],
    ['OrderCurrency ≤ 3 characters', { orderCurrency: 'RUBL' }, 'OrderCurrency:TOO_LONG'],
    ['OrderComment ≤ 256', { orderComment: long(257) }, 'OrderComment:TOO_LONG'],
    ['Delay 0/1', { delay: 2 }, 'Delay:INVALID_VALUE'],
    ['Language RU/EN', { language: 'DE' }, 'Language:INVALID_VALUE'],
    ['ClientIP IPv4', { clientIp: '300.1.1.1' }, 'ClientIP:INVALID_FORMAT'],
    ['ClientIP not IPv6', { clientIp: '::1' }, 'ClientIP:INVALID_FORMAT'],
    ['TokenType required here', { tokenType: undefined }, 'TokenType:REQUIRED'],
    ['TokenType 1/2/3', { tokenType: 4 }, 'TokenType:INVALID_VALUE'],
    ['TokenType 5 is an extension', { tokenType: 5 }, 'TokenType:UNSUPPORTED_TOKEN_TYPE'],
    ['TokenType 6 is an extension', { tokenType: 6 }, 'TokenType:UNSUPPORTED_TOKEN_TYPE'],
    ['PaymentToken required', { paymentToken: '' }, 'PaymentToken:REQUIRED'],
    ['PaymentToken JSON object', { paymentToken: '[1,2]' }, 'PaymentToken:INVALID_JSON'],
    ['PaymentToken not base64', { paymentToken: Buffer.from(APPLE_PAY_TOKEN).toString('base64') }, 'PaymentToken:TOKEN_IS_BASE64'],
    ['Apple Pay token keys', { paymentToken: '{"version":"EC_v1","data":"x"}' }, 'PaymentToken:MISSING_KEY'],
    ['Google Pay token keys', { tokenType: 2, paymentToken: APPLE_PAY_TOKEN }, 'PaymentToken:MISSING_KEY'],
    ['Samsung Pay token non-empty', { tokenType: 3, paymentToken: '{}' }, 'PaymentToken:INVALID_VALUE'],
    ['PaymentToken bounded', { paymentToken: JSON.stringify({ ...JSON.parse(APPLE_PAY_TOKEN), data: 'x'.repeat(70_000) }) }, 'PaymentToken:TOO_LONG'],
    ['Lastname required', { lastname: undefined }, 'Lastname:REQUIRED'],
    ['Lastname ≤ 70', { lastname: long(71) }, 'Lastname:TOO_LONG'],
    ['Firstname required', { firstname: '' }, 'Firstname:REQUIRED'],
    ['Firstname ≤ 70', { firstname: long(71) }, 'Firstname:TOO_LONG'],
    ['Middlename ≤ 70', { middlename: long(71) }, 'Middlename:TOO_LONG'],
    ['Email required', { email: undefined }, 'Email:REQUIRED'],
    ['Email ≤ 128', { email: `${'a'.repeat(120)}@example.com` }, 'Email:TOO_LONG'],
    ['Email shape', { email: 'not-an-email' }, 'Email:INVALID_CHARACTERS'],
    ['Address ≤ 256', { address: long(257) }, 'Address:TOO_LONG'],
    ['HomePhone ≤ 64', { homePhone: '1'.repeat(65) }, 'HomePhone:TOO_LONG'],
    ['WorkPhone ≤ 20', { workPhone: '1'.repeat(21) }, 'WorkPhone:TOO_LONG'],
    ['MobilePhone ≤ 20', { mobilePhone: '1'.repeat(21) }, 'MobilePhone:TOO_LONG'],
    ['Fax ≤ 20', { fax: '1'.repeat(21) }, 'Fax:TOO_LONG'],
    ['Country ≤ 3', { country: 'RUSS' }, 'Country:TOO_LONG'],
    ['State ≤ 3', { state: 'MOSC' }, 'State:TOO_LONG'],
    ['City ≤ 70', { city: long(71) }, 'City:TOO_LONG'],
    ['Zip ≤ 25', { zip: '1'.repeat(26) }, 'Zip:TOO_LONG'],
    ['isConvert 0/1/2', { isConvert: 3 }, 'isConvert:INVALID_VALUE'],
    ['RecurringIndicator 0/1', { recurringIndicator: 2 }, 'RecurringIndicator:INVALID_VALUE'],
    ['Recurring* need RecurringIndicator=1', { recurringPeriod: 30 }, 'RecurringIndicator:REQUIRED_TOGETHER'],
    ['RecurringMinAmount required when recurring', { ...recurring, recurringMinAmount: undefined }, 'RecurringMinAmount:REQUIRED'],
    ['RecurringMaxAmount required when recurring', { ...recurring, recurringMaxAmount: undefined }, 'RecurringMaxAmount:REQUIRED'],
    ['RecurringPeriod required when recurring', { ...recurring, recurringPeriod: undefined }, 'RecurringPeriod:REQUIRED'],
    ['RecurringMaxDate required when recurring', { ...recurring, recurringMaxDate: undefined }, 'RecurringMaxDate:REQUIRED'],
    ['RecurringMinAmount amount rule', { ...recurring, recurringMinAmount: '1.2.3' }, 'RecurringMinAmount:INVALID_FORMAT'],
    ['RecurringMaxAmount ≤ 15 digits', { ...recurring, recurringMaxAmount: '1234567890123456' }, 'RecurringMaxAmount:TOO_MANY_DIGITS'],
    ['RecurringPeriod ≤ 10 digits', { ...recurring, recurringPeriod: '12345678901' }, 'RecurringPeriod:TOO_LONG'],
    ['RecurringPeriod digits', { ...recurring, recurringPeriod: '3o' }, 'RecurringPeriod:INVALID_CHARACTERS'],
    ['RecurringMaxDate DD.MM.YYYY', { ...recurring, recurringMaxDate: '2030-12-31' }, 'RecurringMaxDate:INVALID_DATE'],
    ['RecurringMaxDate real date', { ...recurring, recurringMaxDate: '30.02.2030' }, 'RecurringMaxDate:INVALID_DATE'],
    ['ChequeItems JSON text', { chequeItems: '{not json' }, 'ChequeItems:INVALID_JSON'],
    ['ChequeItems non-empty array', { chequeItems: [] }, 'ChequeItems:INVALID_TYPE'],
    ['ChequeItems product and/or name', { chequeItems: [{ ...item, product: undefined }] }, 'ChequeItems[0].product:MISSING_KEY'],
    ['ChequeItems price', { chequeItems: [{ ...item, price: undefined }] }, 'ChequeItems[0].price:MISSING_KEY'],
    ['ChequeItems quantity', { chequeItems: [{ ...item, quantity: undefined }] }, 'ChequeItems[0].quantity:MISSING_KEY'],
    ['ChequeItems amount', { chequeItems: [{ ...item, amount: undefined }] }, 'ChequeItems[0].amount:MISSING_KEY'],
    ['ChequeItems price format', { chequeItems: [{ ...item, price: '5O.00' }] }, 'ChequeItems[0].price:INVALID_FORMAT'],
    ['ChequeItems quantity positive', { chequeItems: [{ ...item, quantity: 0 }] }, 'ChequeItems[0].quantity:INVALID_VALUE'],
    ['ChequeItems tax dictionary', { chequeItems: [{ ...item, tax: 'vat99' }] }, 'ChequeItems[0].tax:INVALID_VALUE'],
    ['ChequeItems fpmode 1..7', { chequeItems: [{ ...item, fpmode: 8 }] }, 'ChequeItems[0].fpmode:INVALID_VALUE'],
    ['GenerateReceipt 0/1', { generateReceipt: 2 }, 'GenerateReceipt:INVALID_VALUE'],
    ['Tax dictionary', { tax: 'vat7' }, 'Tax:INVALID_VALUE'],
    ['Tax ≤ 10 characters', { tax: 'vat1234567890' }, 'Tax:TOO_LONG'],
    ['ReceiptLine ≤ 128', { receiptLine: long(129) }, 'ReceiptLine:TOO_LONG'],
    ['FPMode 1..7', { fpMode: 0 }, 'FPMode:INVALID_VALUE'],
    ['TaxationSystem 0..5', { taxationSystem: 6 }, 'TaxationSystem:INVALID_VALUE'],
  ];

  it.each(cases)('%s', (_rule, overrides, expected) => {
    expect(issuesOf(overrides)).toEqual([expected]);
  });

  it('counts lengths in characters, not bytes (70 Cyrillic letters pass)', () => {
    expect(issuesOf({ lastname: long(70), orderNumber: long(128) })).toEqual([]);
  });

  it('accepts "," as the amount separator and exactly 15 digits', () => {
    expect(issuesOf({ orderAmount: '1234567890123,45' })).toEqual([]);
  });

  it('accepts TokenType 5 with its card-on-file token shape, and 6, when extensions are enabled', () => {
    const cof = JSON.stringify({ Token: '6f1c2a9e-1111-4c3b-9d7a-000000000001', CustomerNumber: 'C-1' });
    expect(issuesOf({ tokenType: 5, paymentToken: cof }, MERCHANT, true)).toEqual([]);
    expect(issuesOf({ tokenType: 5, paymentToken: '{"Token":"x"}' }, MERCHANT, true)).toEqual(['PaymentToken:MISSING_KEY']);
    expect(issuesOf({ tokenType: 6, paymentToken: '{"data":"x"}' }, MERCHANT, true)).toEqual([]);
  });

  const credentialCases: ReadonlyArray<readonly [string, Partial<MerchantCredentials>, string, ValidationIssueCode]> = [
    ['Merchant_ID required', { merchantId: '' }, 'Merchant_ID', 'REQUIRED'],
    ['Merchant_ID digits', { merchantId: '67a471' }, 'Merchant_ID', 'INVALID_CHARACTERS'],
    ['Login ≥ 8', { login: 'short_1' }, 'Login', 'TOO_SHORT'],
    ['Login ≤ 20', { login: 'l'.repeat(21) }, 'Login', 'TOO_LONG'],
    ['Login charset', { login: 'login-with-dash' }, 'Login', 'INVALID_CHARACTERS'],
    ['Password ≥ 8', { password: 'abc1234' }, 'Password', 'TOO_SHORT'],
    ['Password ≤ 20', { password: 'p'.repeat(21) }, 'Password', 'TOO_LONG'],
    ['Password charset (no _)', { password: 'pass_word1' }, 'Password', 'INVALID_CHARACTERS'],
  ];

  it.each(credentialCases)('%s', (_rule, override, field, code) => {
    const error = captureValidation(() => buildTokenPayFields({ ...MERCHANT, ...override }, validRequest()));
    expect([error.field, error.code]).toEqual([field, code]);
  });

  it('lists every broken rule and never echoes a value in the message', () => {
    const error = captureValidation(() => buildTokenPayFields({ ...MERCHANT, password: 'bad_pass!' }, validRequest({ orderAmount: 'SECRET-ish', delay: 7 })));
    expect(error.issues.map((i) => i.field)).toEqual(['Password', 'OrderAmount', 'Delay']);
    expect(error.message).not.toContain('bad_pass!');
    expect(error.message).not.toContain('SECRET-ish');
  });
});

function captureValidation(fn: () => unknown): AssistValidationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AssistValidationError) return error;
    throw error;
  }
  throw new Error('expected an AssistValidationError');
}
