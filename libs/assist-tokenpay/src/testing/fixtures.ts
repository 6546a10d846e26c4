/**
 * Test fixtures: valid requests and wallet tokens, and an independent builder of Assist JSON
 * answers whose checkvalue is computed here, step by step, not by the library under test.
 */
import { createHash } from 'node:crypto';
import type { TokenPayRequest } from '../request';

export const MERCHANT = { merchantId: '679471', login: 'sandbox_login', password: 'sandboxPass1' } as const;
export const SALT = 'sandbox-salt';

/** Shape of Apple Pay `paymentData` (content is dummy). */
export const APPLE_PAY_TOKEN = JSON.stringify({
  version: 'EC_v1',
  data: 'ZHVtbXktZW5jcnlwdGVkLWRhdGE=',
  signature: 'ZHVtbXktc2lnbmF0dXJl',
  header: { ephemeralPublicKey: 'ZHVtbXk=', publicKeyHash: 'ZHVtbXk=', transactionId: 'abc123' },
});
/** Shape of Google Pay `tokenizationData.token` (content is dummy). */
export const GOOGLE_PAY_TOKEN = JSON.stringify({
  signature: 'MEUCIQDummy',
  intermediateSigningKey: { signedKey: '{}', signatures: ['MEUCIQDummy'] },
  protocolVersion: 'ECv2',
  signedMessage: '{"encryptedMessage":"ZHVtbXk=","ephemeralPublicKey":"ZHVtbXk=","tag":"ZHVtbXk="}',
});
export const SAMSUNG_PAY_TOKEN = JSON.stringify({ type: 'S', version: '100', data: 'ZHVtbXktamNl' });

export function validRequest(overrides: Partial<Record<keyof TokenPayRequest, unknown>> = {}): TokenPayRequest {
  return {
    orderNumber: 'ORD-0001',
    orderAmount: '101.00',
    orderCurrency: 'RUB',
    tokenType: 1,
    paymentToken: APPLE_PAY_TOKEN,
    lastname: 'Иванов',
    firstname: 'Иван',
    email: 'ivan@example.com',
    ...overrides,
  } as TokenPayRequest;
}

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');

/** checkvalue by hand: uppercase(md5(uppercase(md5(SALT) + md5(X)))). */
export function handCheckValue(salt: string, x: string): string {
  const inner = (md5(salt) + md5(x)).toUpperCase();
  return md5(inner).toUpperCase();
}

export interface OrderFixture {
  ordernumber?: string;
  orderamount?: string;
  ordercurrency?: string;
  orderstate?: string;
  testmode?: string;
  checkvalue?: string;
  operations?: unknown[];
}

/** The spec's order object (first JSON example) with a correct checkvalue unless overridden. */
export function orderObject(f: OrderFixture = {}, merchantId: string = MERCHANT.merchantId, salt = SALT) {
  const o = {
    ordernumber: f.ordernumber ?? 'ORD-0001',
    orderamount: f.orderamount ?? '101.00',
    ordercurrency: f.ordercurrency ?? 'RUB',
    orderstate: f.orderstate ?? 'Approved',
  };
  return {
    ordernumber: o.ordernumber,
    billnumber: '5899110210668265',
    testmode: f.testmode ?? '0',
    ordercomment: 'тестовый платеж',
    orderamount: o.orderamount,
    ordercurrency: o.ordercurrency,
    firstname: '',
    lastname: '',
    middlename: '',
    email: '',
    orderdate: '26.01.2015 17:25:39',
    orderstate: o.orderstate,
    fraud_state: '',
    fraud_reason: '',
    checkvalue: f.checkvalue ?? handCheckValue(salt, merchantId + o.ordernumber + o.orderamount + o.ordercurrency + o.orderstate),
    operations: f.operations ?? [operationObject()],
  };
}

/** The spec's operation object (first JSON example). */
export function operationObject(overrides: Record<string, string> = {}) {
  return {
    billnumber: '5899110210668265.1',
    operationtype: '100',
    operationstate: 'Success',
    amount: '101.00',
    currency: 'RUB',
    clientip: '10.20.10.85',
    ipaddress: '0.0.0.0',
    meantype_id: '61',
    meantypename: 'SamsungPay',
    meansubtype: '',
    meannumber: '',
    cardholder: '',
    issuebank: 'UNKNOWN',
    bankcountry: 'UNKNOWN',
    responsecode: 'AS000',
    message: '',
    customermessage: '',
    recommendation: '',
    approvalcode: '123456',
    protocoltypename: 'NET',
    processingname: '',
    operationdate: '26.01.2015 17:25:39',
    authresult: '',
    authrequired: '',
    slipno: '',
    ...overrides,
  };
}
