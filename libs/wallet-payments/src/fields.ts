/**
 * Assist's request parameter names (spec casing, as `AssistValidationError` reports them) → the
 * path of the same value in `POST /v1/wallet-payments`, so a 400 names the caller's field.
 */
const BODY_PATH_BY_SPEC_FIELD: Readonly<Record<string, string>> = {
  OrderNumber: 'orderNumber',
  OrderAmount: 'amount',
  OrderCurrency: 'currency',
  OrderComment: 'orderComment',
  Delay: 'twoStage',
  Language: 'language',
  ClientIP: 'clientIp',
  TokenType: 'tokenType',
  PaymentToken: 'token',
  Lastname: 'customer.lastname',
  Firstname: 'customer.firstname',
  Middlename: 'customer.middlename',
  Email: 'customer.email',
  Address: 'customer.address',
  HomePhone: 'customer.homePhone',
  WorkPhone: 'customer.workPhone',
  MobilePhone: 'customer.mobilePhone',
  Fax: 'customer.fax',
  Country: 'customer.country',
  State: 'customer.state',
  City: 'customer.city',
  Zip: 'customer.zip',
  isConvert: 'isConvert',
  RecurringIndicator: 'recurring',
  RecurringMinAmount: 'recurring.minAmount',
  RecurringMaxAmount: 'recurring.maxAmount',
  RecurringPeriod: 'recurring.periodDays',
  RecurringMaxDate: 'recurring.maxDate',
  ChequeItems: 'chequeItems',
  GenerateReceipt: 'generateReceipt',
  Tax: 'tax',
  ReceiptLine: 'receiptLine',
  FPMode: 'fpMode',
  TaxationSystem: 'taxationSystem',
  // Merchant settings (checked when they are saved; a stored row that breaks a rule is reported on it).
  Merchant_ID: 'merchant.merchantId',
  Login: 'merchant.login',
  Password: 'merchant.password',
  salt: 'merchant.salt',
  baseUrl: 'merchant.serverUrl',
};

/**
 * `Email` → `customer.email`, `ChequeItems[0].price` → `chequeItems.0.price` (the dotted paths the
 * gateway's other 400s use); unknown names pass through.
 */
export function bodyPathOf(specField: string): string {
  const match = /^([A-Za-z_]+)(.*)$/.exec(specField);
  if (!match) return specField;
  const [, head = '', rest = ''] = match;
  const mapped = BODY_PATH_BY_SPEC_FIELD[head];
  return mapped === undefined ? specField : mapped + rest.replace(/\[(\d+)\]/g, '.$1');
}
