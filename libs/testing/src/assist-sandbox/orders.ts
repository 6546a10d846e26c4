/**
 * The sandbox's order book and its deterministic outcomes (README, "Outcome scenarios"): the
 * outcome of a payment is chosen by the last two digits of the amount's minor units.
 * Answers follow the spec's JSON examples; checkvalue is computed here independently of the
 * client library: uppercase(md5(uppercase(md5(SALT) + md5(X)))).
 */
import { createHash } from 'node:crypto';

export type SandboxOrderState = 'In Process' | 'Delayed' | 'Approved' | 'Declined' | 'PartialDelayed' | 'Canceled' | 'PartialCanceled';
type OperationState = 'New' | 'In Process' | 'Success' | 'Failure';

/** 100 Approve (the payment), 200 Charge (confirm), 300 PaymentCancel (release or refund). */
export type SandboxOperationType = '100' | '200' | '300';

export interface SandboxOperation {
  billnumber: string;
  operationtype: SandboxOperationType;
  operationstate: OperationState;
  /** The operation's amount, the server's string (`40.00`). */
  amount: string;
  responsecode: string;
  meantypeId: number;
  meantypename: string;
  meannumber: string;
  approvalcode: string;
  operationdate: string;
}

export interface SandboxOrder {
  readonly ordernumber: string;
  readonly billnumber: string;
  readonly orderamount: string;
  readonly ordercurrency: string;
  readonly delay: boolean;
  readonly tokenType: number;
  readonly testmode: boolean;
  readonly ordercomment: string;
  readonly customer: { firstname: string; lastname: string; middlename: string; email: string };
  readonly orderdate: string;
  state: SandboxOrderState;
  readonly operations: SandboxOperation[];
  /** Money-moving approvals of this order (must never exceed 1). */
  charges: number;
  /** Minor units: authorised by the payment, captured (one-stage: all of it), released, refunded. */
  authorized: bigint;
  captured: bigint;
  released: bigint;
  refunded: bigint;
  /** Scenario 02: the order settles when its state is next read. */
  settleOnNextRead: boolean;
}

/** Result of processing a tokenpay request. */
export type PayResult =
  | { kind: 'order'; order: SandboxOrder }
  | { kind: 'continue'; order: SandboxOrder; continueId: string }
  | { kind: 'refused'; firstcode: number; secondcode: number };

/** Scenario by the last two digits of the amount in minor units. */
export const SCENARIOS = {
  '00': 'approved (Delay=1: Delayed)',
  '01': 'declined',
  '02': 'in process; settles as approved on the next order-state read',
  '03': 'Google Pay (TokenType 2): non-tokenized card, 3/115 + continueurl; other token types: approved',
  '04': 'refused with firstcode 17 / secondcode 211 (limit), no order',
  '05': 'charged, but answered firstcode 2 / secondcode 1 (internal error)',
} as const;

const EXPONENTS: Readonly<Record<string, number>> = { JPY: 0, KRW: 0, ISK: 0, VND: 0, BHD: 3, KWD: 3, JOD: 3, OMR: 3, TND: 3 };
const MEANS: Readonly<Record<number, readonly [number, string]>> = { 1: [60, 'ApplePay'], 2: [62, 'GooglePay'], 3: [61, 'SamsungPay'] };

export interface NewOrder {
  readonly ordernumber: string;
  readonly amount: string;
  readonly currency: string;
  readonly delay: boolean;
  readonly tokenType: number;
  readonly testmode: boolean;
  readonly ordercomment: string;
  readonly customer: SandboxOrder['customer'];
}

export class OrderBook {
  readonly orders = new Map<string, SandboxOrder>();
  readonly continueIds = new Map<string, string>();
  charges = 0;
  #seq = 0;

  constructor(private readonly now: () => Date) {}

  /** Runs the amount's scenario. Duplicate order numbers are refused with 11 / 201. */
  pay(input: NewOrder): PayResult {
    if (this.orders.has(input.ordernumber)) return { kind: 'refused', firstcode: 11, secondcode: 201 };
    const orderamount = formatAmount(input.amount, input.currency);
    const scenario = orderamount.replace(/\D/g, '').slice(-2).padStart(2, '0');
    if (scenario === '04') return { kind: 'refused', firstcode: 17, secondcode: 211 };

    this.#seq += 1;
    const billnumber = `58991102${String(this.#seq).padStart(8, '0')}`;
    const date = gmt(this.now());
    const [meantypeId, meantypename] = MEANS[input.tokenType] ?? [60, 'ApplePay'];
    const nonTokenized = scenario === '03' && input.tokenType === 2;
    const order: SandboxOrder = {
      ordernumber: input.ordernumber,
      billnumber,
      orderamount,
      ordercurrency: input.currency,
      delay: input.delay,
      tokenType: input.tokenType,
      testmode: input.testmode,
      ordercomment: input.ordercomment,
      customer: input.customer,
      orderdate: date,
      state: 'In Process',
      operations: [
        {
          billnumber: `${billnumber}.1`,
          operationtype: '100',
          operationstate: 'In Process',
          amount: orderamount,
          responsecode: 'AS200',
          meantypeId: nonTokenized ? 1 : meantypeId,
          meantypename: nonTokenized ? 'VISA' : meantypename,
          meannumber: nonTokenized ? '411111****1111' : '',
          approvalcode: '',
          operationdate: date,
        },
      ],
      charges: 0,
      authorized: 0n,
      captured: 0n,
      released: 0n,
      refunded: 0n,
      settleOnNextRead: false,
    };
    this.orders.set(order.ordernumber, order);

    switch (scenario) {
      case '01':
        this.decline(order);
        return { kind: 'order', order };
      case '02':
        order.settleOnNextRead = true;
        return { kind: 'order', order };
      case '03':
        if (!nonTokenized) break;
        Object.assign(firstOperation(order), { operationstate: 'New', responsecode: 'AS300' });
        this.continueIds.set(Buffer.from(billnumber).toString('base64url'), order.ordernumber);
        return { kind: 'continue', order, continueId: Buffer.from(billnumber).toString('base64url') };
      case '05':
        this.approve(order);
        return { kind: 'refused', firstcode: 2, secondcode: 1 };
    }
    this.approve(order);
    return { kind: 'order', order };
  }

  /** An order-state read; settles scenario 02 orders. */
  read(ordernumber: string): SandboxOrder | undefined {
    const order = this.orders.get(ordernumber);
    if (order?.settleOnNextRead) {
      order.settleOnNextRead = false;
      this.approve(order);
    }
    return order;
  }

  /** The payer finished (or failed) CVC2 / 3-D Secure on the continue page. */
  completeContinue(continueId: string, approve: boolean): SandboxOrder | undefined {
    const ordernumber = this.continueIds.get(continueId);
    const order = ordernumber === undefined ? undefined : this.orders.get(ordernumber);
    if (!order || order.state !== 'In Process') return undefined;
    this.continueIds.delete(continueId);
    if (approve) this.approve(order);
    else this.decline(order);
    return order;
  }

  approve(order: SandboxOrder): void {
    order.state = order.delay ? 'Delayed' : 'Approved';
    order.charges += 1;
    this.charges += 1;
    order.authorized = toMinor(order.orderamount, order.ordercurrency);
    if (!order.delay) order.captured = order.authorized;
    Object.assign(firstOperation(order), { operationstate: 'Success', responsecode: 'AS000', approvalcode: String(100000 + this.#seq) });
  }

  decline(order: SandboxOrder): void {
    order.state = 'Declined';
    Object.assign(firstOperation(order), { operationstate: 'Failure', responsecode: 'AS100' });
  }

  /** The order whose billnumber this is (the order's, or one of its operations'). */
  byBillnumber(billnumber: string): SandboxOrder | undefined {
    const base = billnumber.split('.')[0];
    return [...this.orders.values()].find((o) => o.billnumber === base);
  }

  /**
   * `/charge/charge.cfm`: confirms `amount` of a Delayed / PartialDelayed order (15 / 307 otherwise; more than
   * the authorised remainder: 5 / 108). Approved when all of the authorisation is captured or released.
   */
  charge(order: SandboxOrder, amountText: string | undefined): AfterPaymentResult {
    const amount = amountText === undefined ? remainder(order) : parseAmount(amountText, order.ordercurrency);
    if (amount === undefined) return { kind: 'refused', firstcode: 4, secondcode: 108 };
    if (amount <= 0n || (order.state !== 'Delayed' && order.state !== 'PartialDelayed')) return { kind: 'refused', firstcode: 15, secondcode: 307 };
    if (amount > remainder(order)) return { kind: 'refused', firstcode: 5, secondcode: 108 };
    order.captured += amount;
    order.state = remainder(order) === 0n ? 'Approved' : 'PartialDelayed';
    this.#addOperation(order, '200', amount);
    return { kind: 'order', order };
  }

  /**
   * `/cancel/wscancel.cfm`: releases `amount` of the authorised remainder while there is one (second code 300,
   * authorisation cancel), otherwise refunds `amount` of the captured money (301, refund); 15 / 308 when there is
   * nothing to cancel, 5 / 108 for more than there is. Canceled when nothing stays charged or held.
   */
  cancel(order: SandboxOrder, amountText: string | undefined): AfterPaymentResult {
    const open = remainder(order);
    const held = ['Delayed', 'PartialDelayed'].includes(order.state) && open > 0n;
    const amount = amountText === undefined ? (held ? open : order.captured - order.refunded) : parseAmount(amountText, order.ordercurrency);
    if (amount === undefined || amount <= 0n)
      return amount === undefined ? { kind: 'refused', firstcode: 4, secondcode: 108 } : { kind: 'refused', firstcode: 15, secondcode: 308 };
    if (held) {
      if (amount > open) return { kind: 'refused', firstcode: 5, secondcode: 108 };
      order.released += amount;
      if (remainder(order) === 0n) order.state = order.captured === 0n ? 'Canceled' : 'Approved';
    } else if (['Approved', 'PartialCanceled'].includes(order.state) && order.captured > order.refunded) {
      if (amount > order.captured - order.refunded) return { kind: 'refused', firstcode: 5, secondcode: 108 };
      order.refunded += amount;
      order.state = order.refunded === order.captured ? 'Canceled' : 'PartialCanceled';
    } else {
      return { kind: 'refused', firstcode: 15, secondcode: 308 };
    }
    this.#addOperation(order, '300', amount);
    return { kind: 'order', order };
  }

  #addOperation(order: SandboxOrder, type: SandboxOperationType, amount: bigint): void {
    const first = firstOperation(order);
    order.operations.push({
      billnumber: `${order.billnumber}.${order.operations.length + 1}`,
      operationtype: type,
      operationstate: 'Success',
      amount: formatMinor(amount, order.ordercurrency),
      responsecode: 'AS000',
      meantypeId: first.meantypeId,
      meantypename: first.meantypename,
      meannumber: first.meannumber,
      approvalcode: String(200000 + order.operations.length),
      operationdate: gmt(this.now()),
    });
  }
}

export type AfterPaymentResult = { kind: 'order'; order: SandboxOrder } | { kind: 'refused'; firstcode: number; secondcode: number };

const remainder = (order: SandboxOrder) => order.authorized - order.captured - order.released;

function exponentOf(currency: string): number {
  return EXPONENTS[currency] ?? 2;
}

/** The server's amount string → minor units (independent of the client's conversion). */
function toMinor(amount: string, currency: string): bigint {
  return parseAmount(amount, currency) ?? 0n;
}

function parseAmount(amount: string, currency: string): bigint | undefined {
  const m = /^(\d+)(?:[.,](\d+))?$/.exec(amount);
  if (!m) return undefined;
  const exponent = exponentOf(currency);
  const fraction = (m[2] ?? '').replace(/0+$/, '');
  if (fraction.length > exponent) return undefined;
  const minor = BigInt((m[1] ?? '0') + fraction.padEnd(exponent, '0'));
  return minor > 0n ? minor : undefined;
}

function formatMinor(minor: bigint, currency: string): string {
  const exponent = exponentOf(currency);
  const digits = minor.toString().padStart(exponent + 1, '0');
  return exponent === 0 ? digits : `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}

function firstOperation(order: SandboxOrder): SandboxOperation {
  const [op] = order.operations;
  if (!op) throw new Error('order without operation');
  return op;
}

/** The server's amount string: '.' separator, the currency's number of fraction digits. */
export function formatAmount(amount: string, currency: string): string {
  const [integer = '0', fraction = ''] = amount.replace(',', '.').split('.');
  const exponent = EXPONENTS[currency] ?? 2;
  const int = integer.replace(/^0+(?=\d)/, '');
  const frac = fraction.replace(/0+$/, '');
  if (frac.length > exponent) return `${int}.${frac}`;
  return exponent === 0 ? int : `${int}.${frac.padEnd(exponent, '0')}`;
}

/** `DD.MM.YYYY HH:mm:ss` in GMT, as in the spec's examples. */
export function gmt(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(date.getUTCDate())}.${p(date.getUTCMonth() + 1)}.${date.getUTCFullYear()} ${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())}`;
}

const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');

export function sandboxCheckValue(salt: string, merchantId: string, order: SandboxOrder): string {
  const x = `${merchantId}${order.ordernumber}${order.orderamount}${order.ordercurrency}${order.state}`;
  return md5((md5(salt) + md5(x)).toUpperCase()).toUpperCase();
}

/** The `order` object of the spec's JSON example. */
export function orderJson(order: SandboxOrder, checkvalue: string): Record<string, unknown> {
  return {
    ordernumber: order.ordernumber,
    billnumber: order.billnumber,
    testmode: order.testmode ? '1' : '0',
    ordercomment: order.ordercomment,
    orderamount: order.orderamount,
    ordercurrency: order.ordercurrency,
    firstname: order.customer.firstname,
    lastname: order.customer.lastname,
    middlename: order.customer.middlename,
    email: order.customer.email,
    orderdate: order.orderdate,
    orderstate: order.state,
    fraud_state: '',
    fraud_reason: '',
    checkvalue,
    operations: order.operations.map((op) => ({
      billnumber: op.billnumber,
      operationtype: op.operationtype,
      operationstate: op.operationstate,
      amount: op.amount,
      currency: order.ordercurrency,
      clientip: '127.0.0.1',
      ipaddress: '127.0.0.1',
      meantype_id: String(op.meantypeId),
      meantypename: op.meantypename,
      meansubtype: '',
      meannumber: op.meannumber,
      cardholder: '',
      issuebank: 'Assist Sandbox Bank',
      bankcountry: 'UNKNOWN',
      responsecode: op.responsecode,
      message: '',
      customermessage: '',
      recommendation: '',
      approvalcode: op.approvalcode,
      protocoltypename: 'NET',
      processingname: 'SANDBOX',
      operationdate: op.operationdate,
      authresult: '',
      authrequired: '',
      slipno: '',
    })),
  };
}
