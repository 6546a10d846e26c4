/**
 * Assist sandbox: `/pay/tokenpay.cfm`, `/orderstate/orderstate.cfm` (with the order's operation list),
 * `/charge/charge.cfm` and `/cancel/wscancel.cfm` over node:http, answering in JSON (Format=5) as the TokenPay
 * document and assist-notes.md describe, plus fault modes (slow, hang, HTTP 500, bad checkvalue, and a lost
 * answer after the request was carried out) for the client's money-safety tests. Test tool only.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OrderBook, gmt, orderJson, sandboxCheckValue, type SandboxOrder } from './orders';
import { checkTokenPayForm, type Form, type Refusal } from './rules';
import { TEST_MERCHANT_PUBLIC_KEY_PEM } from './test-merchant-key';

export const SANDBOX_MERCHANT = {
  merchantId: '679471',
  login: 'sandbox_login',
  password: 'sandboxPass1',
  salt: 'sandbox-salt',
} as const;

/**
 * `lost-answer`: the request is carried out (the money moves), then the connection is dropped unanswered.
 * `no-operations`: carried out, answered with the order but without its `operations` field (assist-notes.md describes
 * orderstate's answer without one): an answer that cannot show whether an operation reached Assist.
 */
export type SandboxMode = 'normal' | 'slow' | 'hang' | 'http500' | 'bad-checkvalue' | 'lost-answer' | 'no-operations';
export type SandboxEndpoint = 'tokenpay' | 'orderstate' | 'charge' | 'cancel';
const ENDPOINTS: readonly SandboxEndpoint[] = ['tokenpay', 'orderstate', 'charge', 'cancel'];

export interface ModeOptions {
  /** Which service the mode applies to (default `tokenpay`); `all` for every one. */
  readonly endpoint?: SandboxEndpoint | 'all';
  /** `slow`: delay before answering (default 1500 ms). */
  readonly delayMs?: number;
  /** Apply to the next N requests only, then back to normal (default: until changed). */
  readonly times?: number;
}

export interface AssistSandboxOptions {
  /** Default 0 (ephemeral). */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  readonly merchantId?: string;
  readonly login?: string;
  readonly password?: string;
  readonly salt?: string;
  /** The merchant's public key (PEM) to check `Signature`; defaults to the committed test key. */
  readonly publicKeyPem?: string;
  /** `required` (default): missing or bad Signature → 9/5; `optional`: checked when sent; `off`. */
  readonly signature?: 'required' | 'optional' | 'off';
  /** Answer every order with testmode=1. */
  readonly testMode?: boolean;
  /** Clock for orderdate/packetdate (default: real time). */
  readonly now?: () => Date;
}

export interface SandboxStats {
  readonly tokenpayRequests: number;
  readonly orderstateRequests: number;
  readonly chargeRequests: number;
  readonly cancelRequests: number;
  /** Payments that moved money, over all orders. A lost-answer test expects exactly 1. */
  readonly charges: number;
}

export interface AssistSandbox {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  readonly orders: ReadonlyMap<string, Readonly<SandboxOrder>>;
  readonly stats: SandboxStats;
  setMode(mode: SandboxMode, options?: ModeOptions): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 256 * 1024;

interface ModeState {
  mode: SandboxMode;
  delayMs: number;
  remaining: number;
}

export async function startAssistSandbox(options: AssistSandboxOptions = {}): Promise<AssistSandbox> {
  const merchant = {
    merchantId: options.merchantId ?? SANDBOX_MERCHANT.merchantId,
    login: options.login ?? SANDBOX_MERCHANT.login,
    password: options.password ?? SANDBOX_MERCHANT.password,
    salt: options.salt ?? SANDBOX_MERCHANT.salt,
  };
  const signatureMode = options.signature ?? 'required';
  const publicKey = createPublicKey(options.publicKeyPem ?? TEST_MERCHANT_PUBLIC_KEY_PEM);
  const now = options.now ?? (() => new Date());
  const book = new OrderBook(now);
  const stats = { tokenpayRequests: 0, orderstateRequests: 0, chargeRequests: 0, cancelRequests: 0 };
  const modes = Object.fromEntries(ENDPOINTS.map((e) => [e, { mode: 'normal', delayMs: 0, remaining: Infinity }])) as Record<SandboxEndpoint, ModeState>;
  const hanging = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();

  /** Takes the current mode of an endpoint, counting down `times`. */
  const takeMode = (endpoint: SandboxEndpoint): ModeState => {
    const state = modes[endpoint];
    const current = { ...state };
    if (state.mode !== 'normal' && --state.remaining <= 0) Object.assign(state, { mode: 'normal', remaining: Infinity });
    return current;
  };

  const answer = (res: ServerResponse, mode: ModeState, body: unknown) => {
    if (mode.mode === 'hang') {
      hanging.add(res);
      return;
    }
    if (mode.mode === 'lost-answer') {
      // Carried out, answer lost: the connection drops before a byte of the answer.
      res.socket?.destroy();
      return;
    }
    const send = () => {
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    if (mode.mode === 'slow') {
      const timer = setTimeout(() => {
        timers.delete(timer);
        send();
      }, mode.delayMs);
      timers.add(timer);
    } else send();
  };

  const checkvalueOf = (order: SandboxOrder, mode: ModeState) => {
    const value = sandboxCheckValue(merchant.salt, merchant.merchantId, order);
    return mode.mode === 'bad-checkvalue' ? corrupt(value) : value;
  };

  /** The order as an answer carries it: without its operation list in `no-operations` mode. */
  const orderBody = (order: SandboxOrder, mode: ModeState) => {
    const json = orderJson(order, checkvalueOf(order, mode));
    if (mode.mode === 'no-operations') delete json['operations'];
    return json;
  };

  /** Sandbox choice: unknown merchant 10 / 200, wrong login or password 7 / 141. */
  const authenticate = (form: Form): Refusal | undefined => {
    if (form.get('merchant_id') !== merchant.merchantId) return { firstcode: 10, secondcode: 200, rule: 'unknown merchant' };
    if (form.get('login') !== merchant.login || form.get('password') !== merchant.password) {
      return { firstcode: 7, secondcode: 141, rule: 'bad login or password' };
    }
    return undefined;
  };

  const tokenpay = (form: Form, res: ServerResponse) => {
    stats.tokenpayRequests += 1;
    const mode = takeMode('tokenpay');
    if (mode.mode === 'http500') return sendStatus(res, 500, 'Internal Server Error');
    const refusal = checkTokenPayForm(form) ?? authenticate(form) ?? checkSignature(form, signatureMode, publicKey, merchant.merchantId);
    if (refusal) return answer(res, mode, codes(refusal.firstcode, refusal.secondcode));
    const currency = form.get('ordercurrency') || 'RUB';
    const result = book.pay({
      ordernumber: form.get('ordernumber') ?? '',
      amount: form.get('orderamount') ?? '',
      currency,
      delay: form.get('delay') === '1',
      tokenType: Number(form.get('tokentype') || '1'),
      testmode: options.testMode ?? false,
      ordercomment: form.get('ordercomment') ?? '',
      customer: {
        firstname: form.get('firstname') ?? '',
        lastname: form.get('lastname') ?? '',
        middlename: form.get('middlename') ?? '',
        email: form.get('email') ?? '',
      },
    });
    const packetdate = gmt(now());
    switch (result.kind) {
      case 'refused':
        return answer(res, mode, codes(result.firstcode, result.secondcode));
      case 'order':
        return answer(res, mode, { order: orderBody(result.order, mode), packetdate });
      case 'continue':
        return answer(res, mode, {
          order: orderBody(result.order, mode),
          packetdate,
          firstcode: '3',
          secondcode: '115',
          continueurl: `${url}/pay/pay.cfm?CFSID=${result.continueId}`,
        });
    }
  };

  const orderstate = (form: Form, res: ServerResponse) => {
    stats.orderstateRequests += 1;
    const mode = takeMode('orderstate');
    if (mode.mode === 'http500') return sendStatus(res, 500, 'Internal Server Error');
    if (!form.get('merchant_id')) return answer(res, mode, codes(3, 100));
    if (!form.get('login')) return answer(res, mode, codes(3, 101));
    if (!form.get('password')) return answer(res, mode, codes(3, 102));
    const ordernumber = form.get('ordernumber');
    if (!ordernumber) return answer(res, mode, codes(3, 107));
    const refusal = authenticate(form);
    if (refusal) return answer(res, mode, codes(refusal.firstcode, refusal.secondcode));
    const order = book.read(ordernumber);
    if (!order) return answer(res, mode, codes(10, 201));
    // The order with every operation on it (payment, confirmations, cancels): how a lost answer is resolved.
    return answer(res, mode, { orderstate: { ...orderBody(order, mode), packetdate: gmt(now()) } });
  };

  /** `/charge/charge.cfm` and `/cancel/wscancel.cfm`: Merchant_ID, Login, Password, Billnumber, Amount (+ Currency). */
  const afterPayment = (kind: 'charge' | 'cancel') => (form: Form, res: ServerResponse) => {
    stats[kind === 'charge' ? 'chargeRequests' : 'cancelRequests'] += 1;
    const mode = takeMode(kind);
    if (mode.mode === 'http500') return sendStatus(res, 500, 'Internal Server Error');
    if (!form.get('merchant_id')) return answer(res, mode, codes(3, 100));
    if (!form.get('login')) return answer(res, mode, codes(3, 101));
    if (!form.get('password')) return answer(res, mode, codes(3, 102));
    const billnumber = form.get('billnumber');
    if (!billnumber) return answer(res, mode, codes(3, 143));
    const refusal = authenticate(form);
    if (refusal) return answer(res, mode, codes(refusal.firstcode, refusal.secondcode));
    const order = book.byBillnumber(billnumber);
    if (!order) return answer(res, mode, codes(10, 201));
    const currency = form.get('currency');
    if (currency && currency !== order.ordercurrency) return answer(res, mode, codes(5, 105));
    // No Amount: the whole of what can be confirmed / cancelled.
    const amount = form.get('amount') || undefined;
    const result = kind === 'charge' ? book.charge(order, amount) : book.cancel(order, amount);
    if (result.kind === 'refused') return answer(res, mode, codes(result.firstcode, result.secondcode));
    return answer(res, mode, { order: orderBody(result.order, mode), packetdate: gmt(now()) });
  };
  const handlers: Record<string, (form: Form, res: ServerResponse) => void> = {
    '/pay/tokenpay.cfm': (form, res) => tokenpay(form, res),
    '/orderstate/orderstate.cfm': (form, res) => orderstate(form, res),
    '/charge/charge.cfm': afterPayment('charge'),
    '/cancel/wscancel.cfm': afterPayment('cancel'),
  };

  /** The CVC2 / 3-D Secure page behind continueurl: `?CFSID=…&outcome=approve|decline`. */
  const continuePage = (query: URLSearchParams, res: ServerResponse) => {
    const order = book.completeContinue(query.get('CFSID') ?? '', query.get('outcome') !== 'decline');
    if (!order) return sendStatus(res, 404, 'No pending payment for this CFSID');
    return sendStatus(res, 200, `Sandbox 3-D Secure complete: order ${order.ordernumber} is ${order.state}`);
  };

  const server = createServer((req, res) => {
    const target = new URL(req.url ?? '/', 'http://sandbox');
    if (req.method === 'GET' && target.pathname === '/pay/pay.cfm') return continuePage(target.searchParams, res);
    const handler = handlers[target.pathname];
    if (!handler) return sendStatus(res, 404, 'Not Found');
    if (req.method !== 'POST') return sendStatus(res, 405, 'Method Not Allowed');
    readForm(req)
      .then((form) => (form ? handler(form, res) : sendStatus(res, 413, 'Payload Too Large')))
      .catch(() => res.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;

  return {
    url,
    orders: book.orders,
    get stats(): SandboxStats {
      return { ...stats, charges: book.charges };
    },
    setMode(mode, modeOptions = {}) {
      const endpoints: readonly SandboxEndpoint[] = modeOptions.endpoint === 'all' ? ENDPOINTS : [modeOptions.endpoint ?? 'tokenpay'];
      for (const endpoint of endpoints) {
        modes[endpoint] = { mode, delayMs: modeOptions.delayMs ?? 1500, remaining: modeOptions.times ?? Infinity };
      }
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Form fields by lower-cased name; undefined when the body exceeds the bound. */
async function readForm(req: IncomingMessage): Promise<Form | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  return new Map([...params].map(([k, v]) => [k.toLowerCase(), v]));
}

/** Spec row Signature: RSA over the MD5 digest of `Merchant_ID;OrderNumber;OrderAmount;OrderCurrency`. */
/** Sandbox choice: a missing (when required) or wrong signature is 9 / 5 ("Ошибка шифрования ключом"). */
function checkSignature(form: Form, mode: 'required' | 'optional' | 'off', key: KeyObject, merchantId: string): Refusal | undefined {
  const signature = form.get('signature');
  if (mode === 'off' || (!signature && mode === 'optional')) return undefined;
  const base = [merchantId, form.get('ordernumber'), form.get('orderamount'), form.get('ordercurrency') ?? ''].join(';');
  const ok = Boolean(signature) && verify('md5', Buffer.from(base, 'utf8'), key, Buffer.from(signature ?? '', 'base64'));
  return ok ? undefined : { firstcode: 9, secondcode: 5, rule: 'signature' };
}

function codes(firstcode: number, secondcode: number) {
  return { firstcode: String(firstcode), secondcode: String(secondcode) };
}

function sendStatus(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}

/** A checkvalue that no longer matches: its first hex digit changed. */
function corrupt(checkvalue: string): string {
  return (checkvalue.startsWith('0') ? '1' : '0') + checkvalue.slice(1);
}
