/**
 * The TokenPay request (spec "Передача платежной информации TokenPay", table "Список параметров
 * запроса"): typed input, every rule of the table checked before sending, serialised in the
 * document's field casing. Errors name the field as the table writes it.
 */
import { checkChequeItems, type ChequeItem } from './cheque';
import {
  EXTENDED_TOKEN_TYPES,
  FP_MODES,
  SPEC_TOKEN_TYPES,
  TAXATION_SYSTEMS,
  TAX_RATES,
  type FpMode,
  type TaxRate,
  type TaxationSystem,
  type TokenType,
} from './enums';
import { checkPaymentToken } from './token';
import { IssueCollector, isDdMmYyyy, isIpv4 } from './validate';

/** Merchant account at Assist (per tenant). `salt` is the secret word used for checkvalue. */
export interface MerchantCredentials {
  readonly merchantId: string;
  readonly login: string;
  readonly password: string;
}

export interface TokenPayRequest {
  /** Idempotency key on Assist's side: never reuse it for another payment. */
  readonly orderNumber: string;
  /** Use {@link toOrderAmount} to build it from integer minor units. */
  readonly orderAmount: string;
  /** Optional in the spec (merchant default); required here so signature and checks are explicit. */
  readonly orderCurrency: string;
  readonly orderComment?: string;
  /** 0 one-stage (default), 1 two-stage. */
  readonly delay?: 0 | 1;
  readonly language?: 'RU' | 'EN';
  readonly clientIp?: string;
  /** Optional in the spec (default 1 = Apple Pay); required here so a token is never sent as the wrong type. */
  readonly tokenType: TokenType;
  /** The wallet's token JSON text (Apple Pay: raw `paymentData`; Google Pay: `tokenizationData.token`). */
  readonly paymentToken: string;
  readonly lastname: string;
  readonly firstname: string;
  readonly middlename?: string;
  readonly email: string;
  readonly address?: string;
  readonly homePhone?: string;
  readonly workPhone?: string;
  readonly mobilePhone?: string;
  readonly fax?: string;
  readonly country?: string;
  readonly state?: string;
  readonly city?: string;
  readonly zip?: string;
  readonly isConvert?: 0 | 1 | 2;
  readonly recurringIndicator?: 0 | 1;
  readonly recurringMinAmount?: string;
  readonly recurringMaxAmount?: string;
  /** Days, at most 10 digits. */
  readonly recurringPeriod?: number | string;
  /** DD.MM.YYYY */
  readonly recurringMaxDate?: string;
  readonly chequeItems?: readonly ChequeItem[] | string;
  readonly generateReceipt?: 0 | 1;
  readonly tax?: TaxRate;
  readonly receiptLine?: string;
  readonly fpMode?: FpMode;
  readonly taxationSystem?: TaxationSystem;
}

export interface BuildOptions {
  /** Accept TokenType 5 (Assist card-on-file) and 6 (Mir Pay), extensions outside the document. */
  readonly extendedTokenTypes?: boolean;
}

/** Wire fields in table order, spec casing. `Format` is always 5 (JSON). */
export type TokenPayFields = ReadonlyArray<readonly [name: string, value: string]>;

const LOGIN_RULE = { required: true, min: 8, max: 20, charset: /^[A-Za-z0-9_]+$/, charsetText: 'Latin letters, digits and _' };
const PASSWORD_RULE = { required: true, min: 8, max: 20, charset: /^[A-Za-z0-9]+$/, charsetText: 'Latin letters and digits' };
const DIGITS = { charset: /^\d+$/, charsetText: 'digits' };

/** Checks the merchant's account fields (Merchant_ID, Login, Password rows of the table). */
export function checkCredentials(issues: IssueCollector, c: MerchantCredentials): void {
  issues.text('Merchant_ID', c.merchantId, { required: true, max: 20, ...DIGITS });
  issues.text('Login', c.login, LOGIN_RULE);
  issues.text('Password', c.password, PASSWORD_RULE);
}

/**
 * Validates the whole request and returns the wire fields (without `Signature`).
 * @throws AssistValidationError listing every broken rule.
 */
export function buildTokenPayFields(credentials: MerchantCredentials, request: TokenPayRequest, options: BuildOptions = {}): TokenPayFields {
  const issues = new IssueCollector();
  const out: Array<readonly [string, string]> = [];
  const put = (name: string, value: string | number | undefined) => {
    if (value !== undefined) out.push([name, String(value)]);
  };
  const r = request;

  checkCredentials(issues, credentials);
  put('Merchant_ID', credentials.merchantId);
  put('Login', credentials.login);
  put('Password', credentials.password);
  put('OrderNumber', issues.text('OrderNumber', r.orderNumber, { required: true, max: 128 }));
  put('OrderAmount', issues.amount('OrderAmount', r.orderAmount, true));
  put(
    'OrderCurrency',
    issues.text('OrderCurrency', r.orderCurrency, { required: true, max: 3, charset: /^[A-Z]{3}$/, charsetText: 'three upper-case letters (ISO 4217)' }),
  );
  put('OrderComment', issues.text('OrderComment', r.orderComment, { max: 256 }));
  put('Delay', issues.oneOf('Delay', r.delay, [0, 1]));
  if (issues.present('Language', r.language, false)) {
    if (r.language === 'RU' || r.language === 'EN') put('Language', r.language);
    else issues.add('Language', 'INVALID_VALUE', 'must be RU or EN');
  }
  const ip = issues.text('ClientIP', r.clientIp, { max: 19 });
  if (ip !== undefined && !isIpv4(ip)) issues.add('ClientIP', 'INVALID_FORMAT', 'must be a dotted-quad IPv4 address');
  else put('ClientIP', ip);
  const tokenType = checkTokenType(issues, r.tokenType, options);
  put('TokenType', tokenType);
  put('PaymentToken', checkPaymentToken(issues, r.paymentToken, tokenType));
  put('Lastname', issues.text('Lastname', r.lastname, { required: true, max: 70 }));
  put('Firstname', issues.text('Firstname', r.firstname, { required: true, max: 70 }));
  put('Middlename', issues.text('Middlename', r.middlename, { max: 70 }));
  put('Email', issues.text('Email', r.email, { required: true, max: 128, charset: /^[^\s@]+@[^\s@]+\.[^\s@]+$/, charsetText: 'a local part, @ and a domain' }));
  put('Address', issues.text('Address', r.address, { max: 256 }));
  put('HomePhone', issues.text('HomePhone', r.homePhone, { max: 64 }));
  put('WorkPhone', issues.text('WorkPhone', r.workPhone, { max: 20 }));
  put('MobilePhone', issues.text('MobilePhone', r.mobilePhone, { max: 20 }));
  put('Fax', issues.text('Fax', r.fax, { max: 20 }));
  put('Country', issues.text('Country', r.country, { max: 3 }));
  put('State', issues.text('State', r.state, { max: 3 }));
  put('City', issues.text('City', r.city, { max: 70 }));
  put('Zip', issues.text('Zip', r.zip, { max: 25 }));
  put('isConvert', issues.oneOf('isConvert', r.isConvert, [0, 1, 2]));
  for (const [name, value] of checkRecurring(issues, r)) put(name, value);
  put('ChequeItems', checkChequeItems(issues, r.chequeItems));
  put('GenerateReceipt', issues.oneOf('GenerateReceipt', r.generateReceipt, [0, 1]));
  put('Tax', checkTax(issues, r.tax));
  put('ReceiptLine', issues.text('ReceiptLine', r.receiptLine, { max: 128 }));
  put('FPMode', issues.oneOf('FPMode', r.fpMode, FP_MODES));
  put('TaxationSystem', issues.oneOf('TaxationSystem', r.taxationSystem, TAXATION_SYSTEMS));
  put('Format', 5);

  issues.throwIfAny();
  return out;
}

function checkTokenType(issues: IssueCollector, value: unknown, options: BuildOptions): TokenType | undefined {
  const extended = EXTENDED_TOKEN_TYPES as readonly unknown[];
  if (!options.extendedTokenTypes && (extended.includes(value) || (typeof value === 'string' && extended.includes(Number(value))))) {
    return issues.add(
      'TokenType',
      'UNSUPPORTED_TOKEN_TYPE',
      'TokenType 5 (Assist card-on-file) and 6 (Mir Pay) are extensions outside the TokenPay document; enable extendedTokenTypes to send them',
    );
  }
  const allowed = options.extendedTokenTypes ? [...SPEC_TOKEN_TYPES, ...EXTENDED_TOKEN_TYPES] : SPEC_TOKEN_TYPES;
  return issues.oneOf('TokenType', value, allowed, true);
}

/** "Обязателен при RecurringIndicator = 1": the four Recurring* fields go together with the indicator. */
function checkRecurring(issues: IssueCollector, r: TokenPayRequest): Array<readonly [string, string | number | undefined]> {
  const indicator = issues.oneOf('RecurringIndicator', r.recurringIndicator, [0, 1]);
  const given = [r.recurringMinAmount, r.recurringMaxAmount, r.recurringPeriod, r.recurringMaxDate].some((v) => v !== undefined && v !== '');
  if (indicator !== 1) {
    if (given) issues.add('RecurringIndicator', 'REQUIRED_TOGETHER', 'must be 1 when Recurring* fields are sent');
    return [['RecurringIndicator', indicator]];
  }
  const min = issues.amount('RecurringMinAmount', r.recurringMinAmount, true);
  const max = issues.amount('RecurringMaxAmount', r.recurringMaxAmount, true);
  const period = issues.text('RecurringPeriod', r.recurringPeriod === undefined ? undefined : String(r.recurringPeriod), {
    required: true,
    max: 10,
    ...DIGITS,
  });
  let maxDate = issues.text('RecurringMaxDate', r.recurringMaxDate, { required: true, max: 10 });
  if (maxDate !== undefined && !isDdMmYyyy(maxDate)) {
    maxDate = issues.add('RecurringMaxDate', 'INVALID_DATE', 'must be a date in DD.MM.YYYY format');
  }
  return [
    ['RecurringIndicator', 1],
    ['RecurringMinAmount', min],
    ['RecurringMaxAmount', max],
    ['RecurringPeriod', period],
    ['RecurringMaxDate', maxDate],
  ];
}

/** Tax: at most 10 characters, a value of the tax-rate dictionary (matched case-insensitively). */
function checkTax(issues: IssueCollector, value: unknown): TaxRate | undefined {
  const text = issues.text('Tax', value, { max: 10 });
  if (text === undefined) return undefined;
  const lower = text.toLowerCase();
  if (!(TAX_RATES as readonly string[]).includes(lower)) {
    return issues.add('Tax', 'INVALID_VALUE', `must be one of ${TAX_RATES.join(', ')}`);
  }
  return lower as TaxRate;
}
