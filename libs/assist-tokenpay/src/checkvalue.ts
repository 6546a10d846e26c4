/**
 * Response `checkvalue` (spec, table "Список параметров ответа"):
 * `uppercase(md5(uppercase(md5(SALT) + md5(X))))`, X = merchant_id + ordernumber + orderamount +
 * ordercurrency + orderstate concatenated without separators. The two inner digests are lower-case
 * hex; their concatenation is upper-cased before hashing (assist-notes.md, checked against
 * Assist's own PHP code).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface CheckValueFields {
  readonly merchantId: string;
  /** The server's strings, verbatim (`24.00`, not `24`). */
  readonly orderNumber: string;
  readonly orderAmount: string;
  readonly orderCurrency: string;
  readonly orderState: string;
}

const md5Hex = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');

export function computeCheckValue(salt: string, f: CheckValueFields): string {
  const x = f.merchantId + f.orderNumber + f.orderAmount + f.orderCurrency + f.orderState;
  return md5Hex((md5Hex(salt) + md5Hex(x)).toUpperCase()).toUpperCase();
}

/** Constant-time comparison; a received value in lower case is accepted. */
export function verifyCheckValue(salt: string, f: CheckValueFields, received: string): boolean {
  const expected = Buffer.from(computeCheckValue(salt, f), 'latin1');
  const actual = Buffer.from(received.toUpperCase(), 'latin1');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
