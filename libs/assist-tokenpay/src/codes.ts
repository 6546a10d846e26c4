/**
 * Spec tables "Коды автоматизированных интерфейсов": `firstcode` (what went wrong) and
 * `secondcode` (which parameter or object it concerns). Every code of both tables is listed;
 * `specText` is the spec's own wording, `message` our English rendering.
 */

/** Named first codes, in table order. */
export const FIRST_CODES = {
  0: { name: 'SUCCESS', message: 'Success', specText: 'Успех' },
  1: { name: 'ERROR', message: 'Error', specText: 'Ошибка' },
  2: { name: 'INTERNAL_ERROR', message: 'Internal error', specText: 'Внутренняя ошибка' },
  3: {
    name: 'MISSING_PARAMETER',
    message: 'A required parameter is missing',
    specText: 'Отсутствие обязательного параметра',
  },
  4: { name: 'INVALID_FORMAT', message: 'Parameter format error', specText: 'Ошибка в формате параметра' },
  5: { name: 'INVALID_VALUE', message: 'Invalid parameter value', specText: 'Неверное значение параметра' },
  6: {
    name: 'INCOMPATIBLE_VERSION',
    message: 'Incompatible system version',
    specText: 'Несоответствующая версия системы',
  },
  7: { name: 'AUTHENTICATION_FAILED', message: 'Authentication error', specText: 'Ошибка аутентификации' },
  8: { name: 'AUTHORIZATION_FAILED', message: 'Authorization error', specText: 'Ошибка авторизации' },
  9: { name: 'ENCRYPTION_ERROR', message: 'Encryption error', specText: 'Ошибка шифрования' },
  10: { name: 'OBJECT_NOT_FOUND', message: 'Object not found', specText: 'Отсутствие объекта' },
  11: { name: 'DUPLICATE_OBJECT', message: 'Duplicate object', specText: 'Дубликатный объект' },
  12: { name: 'OBJECT_LOCKED', message: 'Object is locked', specText: 'Объект заблокирован' },
  14: { name: 'FORBIDDEN_OBJECT', message: 'Forbidden object', specText: 'Запрещенный объект' },
  15: { name: 'FORBIDDEN_OPERATION', message: 'Forbidden operation', specText: 'Запрещенная операция' },
  16: { name: 'OPERATION_TIMED_OUT', message: 'Operation timed out', specText: 'Истекло время операции' },
  17: { name: 'LIMIT_EXCEEDED', message: 'Limit error', specText: 'Ошибка лимитов' },
  18: { name: 'SUSPECTED_FRAUD', message: 'Suspected fraud', specText: 'Подозрение на мошенничество' },
  19: { name: 'ACCESS_DENIED', message: 'Access denied', specText: 'Доступ запрещен' },
  20: {
    name: 'THREE_DS_FAILED',
    message: '3-D Secure authentication error',
    specText: 'Ошибка авторизации по 3D-Secure',
  },
  21: { name: 'OPERATION_DECLINED', message: 'Operation declined', specText: 'Операция отклонена' },
} as const;

export type FirstCode = keyof typeof FIRST_CODES;
/** `UNRECOGNIZED` stands for a first code that is not in the spec's table. */
export type FirstCodeName = (typeof FIRST_CODES)[FirstCode]['name'] | 'UNRECOGNIZED';

export interface SecondCodeInfo {
  readonly secondCode: number;
  readonly message: string;
  readonly specText: string;
  /** The TokenPay request parameter (spec casing) this code points at, if any. */
  readonly field?: string;
}

type SecondRow = readonly [code: number, message: string, specText: string, field?: string];

// prettier-ignore
const SECOND_ROWS: readonly SecondRow[] = [
  [0, 'No additional information', 'Дополнительной информации нет'],
  [1, 'Unexpected error', 'Непредвиденная ошибка'],
  [2, 'Generated document is too large', 'Сгенерированный документ слишком большой'],
  [3, 'Interface request rate exceeded', 'Частота запроса интерфейса превышена'],
  [4, 'Selection interval is too large', 'Интервал выборки слишком большой'],
  [5, 'Key encryption error', 'Ошибка шифрования ключом'],
  [6, 'Key decryption error', 'Ошибка расшифровки ключом'],
  [100, 'Parameter MERCHANT_ID', 'Параметр MERCHANT_ID', 'Merchant_ID'],
  [101, 'Parameter LOGIN', 'Параметр LOGIN', 'Login'],
  [102, 'Parameter PASSWORD', 'Параметр PASSWORD', 'Password'],
  [103, 'Parameter FORMAT', 'Параметр FORMAT', 'Format'],
  [104, 'Parameter DATE', 'Параметр DATE'],
  [105, 'Parameter CURRENCY', 'Параметр CURRENCY', 'OrderCurrency'],
  [106, 'Parameter MEANNUMBER', 'Параметр MEANNUMBER'],
  [107, 'Parameter ORDERNUMBER', 'Параметр ORDERNUMBER', 'OrderNumber'],
  [108, 'Parameter AMOUNT', 'Параметр AMOUNT', 'OrderAmount'],
  [109, 'Parameter DELAY', 'Параметр DELAY', 'Delay'],
  [110, 'Parameter COMMENT', 'Параметр COMMENT', 'OrderComment'],
  [111, 'Parameter MEANTYPE', 'Параметр MEANTYPE'],
  [112, 'Parameter EXPIREMONTH', 'Параметр EXPIREMONTH'],
  [113, 'Parameter EXPIREYEAR', 'Параметр EXPIREYEAR'],
  [114, 'Parameter CARDHOLDER', 'Параметр CARDHOLDER'],
  [115, 'Parameter CSC2', 'Параметр CSC2'],
  [116, 'Parameter CLIENTIP', 'Параметр CLIENTIP', 'ClientIP'],
  [117, 'Parameter LASTNAME', 'Параметр LASTNAME', 'Lastname'],
  [118, 'Parameter FIRSTNAME', 'Параметр FIRSTNAME', 'Firstname'],
  [119, 'Parameter MIDDLENAME', 'Параметр MIDDLENAME', 'Middlename'],
  [120, 'Parameter EMAIL', 'Параметр EMAIL', 'Email'],
  [121, 'Parameter ADDRESS', 'Параметр ADDRESS', 'Address'],
  [122, 'Parameter PHONE (HomePhone, WorkPhone, MobilePhone or Fax)', 'Параметр PHONE'],
  [123, 'Parameter CITY', 'Параметр CITY', 'City'],
  [124, 'Parameter STATE', 'Параметр STATE', 'State'],
  [125, 'Parameter ZIP', 'Параметр ZIP', 'Zip'],
  [126, 'Parameter LIMITTYPE', 'Параметр LIMITTYPE'],
  [127, 'Parameter LANGUAGE', 'Параметр LANGUAGE', 'Language'],
  [128, 'Parameter COUNTRY', 'Параметр COUNTRY', 'Country'],
  [129, 'Parameters STARTDAY/STARTMONTH/STARTYEAR', 'Параметры STARTDAY и/или STARTMONTH и/или STARTYEAR'],
  [130, 'Parameters ENDDAY/ENDMONTH/ENDYEAR', 'Параметры ENDDAY и/или ENDMONTH и/или ENDYEAR'],
  [131, 'Parameter SUCCESS', 'Параметр SUCCESS'],
  [132, 'Parameter ZIPFLAG', 'Параметр ZIPFLAG'],
  [133, 'Parameter HEADER', 'Параметр HEADER'],
  [134, 'Parameter HEADER1', 'Параметр HEADER1'],
  [135, 'Parameter DELIMITER', 'Параметр DELIMITER'],
  [136, 'Parameter OPENDELIMITER', 'Параметр OPENDELIMITER'],
  [137, 'Parameter CLOSEDELIMITER', 'Параметр CLOSEDELIMITER'],
  [138, 'Parameter ROWDELIMITER', 'Параметр ROWDELIMITER'],
  [139, 'Parameter FIELDS', 'Параметр FIELDS'],
  [140, 'Parameter SSL', 'Параметр SSL'],
  [141, 'Parameters LOGIN and/or PASSWORD', 'Параметры LOGIN и/или PASSWORD', 'Login'],
  [142, 'Parameters EXPIREMONTH and/or EXPIREYEAR', 'Параметры EXPIREMONTH и/или EXPIREYEAR'],
  [143, 'Parameter BILLNUMBER', 'Параметр BILLNUMBER'],
  [144, 'Parameter PROTECTCODE', 'Параметр PROTECTCODE'],
  [145, 'Parameter OPTYPE', 'Параметр OPTYPE'],
  [146, 'Parameter OPSTATE', 'Параметр OPSTATE'],
  [147, 'Parameter RPSERIES', 'Параметр RPSERIES'],
  [148, 'Parameter RPNUMBER', 'Параметр RPNUMBER'],
  [149, 'Parameter ASSISTID', 'Параметр ASSISTID'],
  [150, 'Parameter PIN', 'Параметр PIN'],
  [153, 'Parameter TICKET_NUMBER, PNR', 'Параметр TICKET_NUMBER, PNR'],
  [154, 'Parameter URL', 'Параметр URL'],
  [155, 'Parameter TRANSACT_ID', 'Параметр TRANSACT_ID'],
  [156, 'Parameter TID', 'Параметр TID'],
  [157, 'Parameter MID', 'Параметр MID'],
  [159, 'Parameter BIN', 'Параметр BIN'],
  [161, 'Parameter BillingNumber', 'Параметр BillingNumber'],
  [163, 'Parameter TRANSACTSTATE', 'Параметр TRANSACTSTATE'],
  [164, 'Parameter ORDERSTATE', 'Параметр ORDERSTATE'],
  [165, 'Parameter TRANSACTTYPE', 'Параметр TRANSACTTYPE'],
  [167, 'Parameter Currency RATE', 'Параметр Currency RATE'],
  [170, 'Parameter ResponseCode', 'Параметр ResponseCode'],
  [173, 'Parameter IP-ADDRESS', 'Параметр IP-ADDRESS'],
  [176, 'Parameter PNR', 'Параметр PNR'],
  [177, 'Parameter PaymentMode', 'Параметр PaymentMode'],
  [179, 'Parameter CHEQUE', 'Параметр CHEQUE', 'ChequeItems'],
  [185, 'Parameter BILLSENDTYPE', 'Параметр BILLSENDTYPE'],
  [186, 'Parameter HASHTYPE', 'Параметр HASHTYPE'],
  [187, 'Parameter BILLNO', 'Параметр BILLNO'],
  [188, 'Parameter BILLNOTEMPLATE', 'Параметр BILLNOTEMPLATE'],
  [189, 'Parameter BILL_ID', 'Параметр BILL_ID'],
  [190, 'Parameter BILLSTATE', 'Параметр BILLSTATE'],
  [200, 'Object: merchant', 'Объект Предприятие'],
  [201, 'Object: order', 'Объект Заказ'],
  [202, 'Object: customer', 'Объект Покупатель'],
  [203, 'Object: credit card', 'Объект Кредитная карта'],
  [204, 'Object: bank', 'Объект Банк'],
  [205, 'Object: processing', 'Объект Процессинг'],
  [206, 'Object: terminal', 'Объект Терминал'],
  [207, 'Object: country', 'Объект Страна'],
  [208, 'Object: currency', 'Объект Валюта'],
  [209, 'Object: currency rate', 'Объект Курс валюты'],
  [210, 'Object: fee', 'Объект Комиссия'],
  [211, 'Object: limit', 'Объект Лимит'],
  [212, 'Parameter TestMode', 'Параметр TestMode'],
  [213, 'Parameter PaymentType', 'Параметр PaymentType'],
  [214, 'Object: template', 'Объект Template'],
  [215, 'Object: SOAP packet', 'Объект SOAP PACKET'],
  [216, 'Object: operation', 'Объект Операция'],
  [217, 'Object: payment means type', 'Объект Тип платежного средства'],
  [218, 'Object: payment means', 'Объект Платежное средство'],
  [220, 'Object: transaction', 'Объект транзакция'],
  [221, 'Object: user', 'Объект Пользователь'],
  [225, 'Object: legal entity', 'Объект Юридическое лицо'],
  [226, 'Object: company', 'Объект Компания'],
  [228, 'Object: account', 'Объект Счет'],
  [300, 'Authorization reversal', 'Отмена авторизации'],
  [301, 'Refund', 'Возврат средств (refund)'],
  [302, 'Financial confirmation (deposit)', 'Финансовое подтверждение (deposit)'],
  [305, 'Financial transaction reversal', 'Отмена финансовой транзакции'],
  [306, 'Payment operation', 'Операция оплаты'],
  [307, 'Confirmation operation', 'Операция подтверждения'],
  [308, 'Cancellation operation', 'Операция отмены'],
  [309, 'Bill annulment operation', 'Операция аннулирования счета'],
  [320, 'Recurring payment', 'Рекуррентный платеж', 'RecurringIndicator'],
  [350, 'Web service', 'Веб-сервис'],
  [400, 'Directory Server error', 'Ошибка Directory Server'],
  [402, 'Awaiting 3-D Secure authentication', 'Ожидание авторизации по 3D-Secure'],
  [403, 'Authorization forbidden by the DS', 'Авторизация запрещена DS'],
];

export const SECOND_CODES: ReadonlyMap<number, SecondCodeInfo> = new Map(
  SECOND_ROWS.map(([secondCode, message, specText, field]) => [
    secondCode,
    field === undefined ? { secondCode, message, specText } : { secondCode, message, specText, field },
  ]),
);

export function firstCodeName(firstCode: number): FirstCodeName {
  return isFirstCode(firstCode) ? FIRST_CODES[firstCode].name : 'UNRECOGNIZED';
}

function isFirstCode(n: number): n is FirstCode {
  return Object.prototype.hasOwnProperty.call(FIRST_CODES, n);
}

/** "Operation declined (Object: limit) [17/211]" — a clear message for a firstcode/secondcode pair. */
export function describeCodes(firstCode: number, secondCode: number): string {
  const first = isFirstCode(firstCode) ? FIRST_CODES[firstCode].message : 'Unrecognized error';
  const second = SECOND_CODES.get(secondCode);
  const detail = second && secondCode !== 0 ? ` (${second.message})` : '';
  return `${first}${detail} [${firstCode}/${secondCode}]`;
}

/**
 * The 3 / 115 pair is not an error: for a non-tokenized Google Pay card it comes with
 * `continueurl` (spec, response parameters, note "*").
 */
export const CONTINUE_CODES = { firstCode: 3, secondCode: 115 } as const;

/**
 * First codes after which the payment may or may not have happened: the outcome is `unknown`
 * and the order is resolved through the order-state service. All other non-zero codes are
 * definitive refusals (nothing was charged).
 */
export const AMBIGUOUS_FIRST_CODES: ReadonlySet<number> = new Set([1, 2, 16]);

/** "Дубликатный объект": an order with this OrderNumber already exists; look its state up. */
export const DUPLICATE_FIRST_CODE = 11;
/** "Отсутствие объекта": used by the order-state service for an unknown order. */
export const NOT_FOUND_FIRST_CODE = 10;
