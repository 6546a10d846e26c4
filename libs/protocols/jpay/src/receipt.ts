/**
 * Transaction receipt (§8.9 "Пример ответа", §8.10 SBP and SBP/CFT receipts).
 *
 *  - [JPAY-8.9-APPNAME] "Для получения имени приложения следует использовать теги apname, alabel и
 *    appname в указанном порядке. Для декодирования значения тега apname используется индекс кодовой
 *    таблицы ict-id" (9F11 = ISO/IEC 8859 part number).
 *  - [JPAY-8.9-APPROVED] "Транзакция успешно выполнена и одобрена, если в ответе имеется чек и тэг чека
 *    tstatus = approved". SBP receipts may carry `status` instead of `tstatus`: either counts.
 *  - [JPAY-9-PAN] `plain-text-pan` is masked here, at decode time, and the full value is dropped.
 */
import { decodeAmount, encodeAmount } from './amounts';
import { compact, decodeLines, encodeLines, mapOptional } from './codec-util';
import type { Receipt } from './messages';
import { maskPan } from './pan';
import { el, opt, type XmlElement } from './xml';

type TextKey = Exclude<keyof Receipt, 'header' | 'footer' | 'amountAuthorized' | 'amountOther' | 'cft' | 'extras' | 'applicationName' | 'plainTextPanMasked'>;

/** XML tag ↔ receipt property, in the order of the documents' example. */
const TEXT_FIELDS: ReadonlyArray<readonly [string, TextKey]> = [
  ['tid', 'tid'],
  ['mid', 'mid'],
  ['seq', 'seq'],
  ['type', 'type'],
  ['state', 'state'],
  ['status', 'status'],
  ['tstatus', 'tstatus'],
  ['currency', 'currency'],
  ['aid', 'aid'],
  ['ps-code', 'psCode'],
  ['appname', 'appname'],
  ['apname', 'apname'],
  ['alabel', 'alabel'],
  ['ict-id', 'ictId'],
  ['pin-entered', 'pinEntered'],
  ['cdcvm', 'cdcvm'],
  ['signature', 'signature'],
  ['pan', 'pan'],
  ['aed', 'aed'],
  ['rrn', 'rrn'],
  ['resp-code', 'respCode'],
  ['resp-code-description', 'respCodeDescription'],
  ['auth-number', 'authNumber'],
  ['datetime', 'datetime'],
  ['tsi', 'tsi'],
  ['tvr', 'tvr'],
  ['decline-reason', 'declineReason'],
  ['acquirer-tag', 'acquirerTag'],
  ['bank-name', 'bankName'],
  ['record', 'record'],
  ['iface', 'iface'],
  ['tid-sbp', 'tidSbp'],
  ['error-code', 'errorCode'],
];
const TEXT_BY_TAG = new Map(TEXT_FIELDS.map(([tag, key]) => [tag, key]));

/** Decodes the Application Preferred Name (HEX-ASCII of 9F12) with the 9F11 code table, if supported. */
export function decodePreferredName(apnameHex: string, ictId: string): string | undefined {
  const table = parseInt(ictId, 16);
  if (!/^[0-9a-fA-F]{1,2}$/.test(ictId) || table < 1 || table > 10) return undefined;
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(apnameHex)) return undefined;
  try {
    return new TextDecoder(`iso-8859-${table}`, { fatal: true }).decode(Buffer.from(apnameHex, 'hex'));
  } catch {
    return undefined;
  }
}

/** [JPAY-8.9-APPNAME] apname (decoded with ict-id) → alabel → appname. */
export function resolveApplicationName(receipt: Pick<Receipt, 'apname' | 'ictId' | 'alabel' | 'appname'>): string | undefined {
  if (receipt.apname && receipt.ictId) {
    const preferred = decodePreferredName(receipt.apname, receipt.ictId);
    if (preferred) return preferred;
  }
  return receipt.alabel || receipt.appname || undefined;
}

/** [JPAY-8.9-APPROVED] */
export function isApprovedReceipt(receipt: Receipt | undefined): boolean {
  return (receipt?.tstatus ?? receipt?.status) === 'approved';
}

export function decodeReceipt(block: XmlElement): Receipt {
  const text: Partial<Record<TextKey, string>> = {};
  const extras: XmlElement[] = [];
  let cft: Record<string, string> | undefined;
  let plainTextPanMasked: string | undefined;
  let amountAuthorized: number | undefined;
  let amountOther: number | undefined;
  for (const item of block.children) {
    const key = TEXT_BY_TAG.get(item.name);
    if (key !== undefined) {
      if (text[key] === undefined) text[key] = item.text.trim();
      continue;
    }
    switch (item.name) {
      case 'amount-authorized':
        amountAuthorized = mapOptional(item.text.trim(), (v) => decodeAmount(v, 'amount-authorized'));
        break;
      case 'amount-other':
        amountOther = mapOptional(item.text.trim(), (v) => decodeAmount(v, 'amount-other'));
        break;
      case 'plain-text-pan':
        plainTextPanMasked = maskPan(item.text.trim());
        break;
      case 'cft':
        cft = Object.fromEntries(item.children.map((c) => [c.name, c.text.trim()]));
        break;
      case 'header':
      case 'footer':
        break;
      default:
        extras.push(item);
    }
  }
  const partial = compact({ ...text, amountAuthorized, amountOther, plainTextPanMasked, cft });
  return compact({
    header: decodeLines(block.children.find((c) => c.name === 'header')),
    footer: decodeLines(block.children.find((c) => c.name === 'footer')),
    ...partial,
    applicationName: resolveApplicationName(partial),
    extras,
  });
}

export interface EncodeReceiptOptions {
  /** Simulator only: the full PAN to send as `plain-text-pan` on an encrypted session. */
  readonly plainTextPan?: string;
}

export function encodeReceipt(receipt: Receipt, options: EncodeReceiptOptions = {}): XmlElement {
  const fields: (XmlElement | undefined)[] = [encodeLines('header', receipt.header)];
  for (const [tag, key] of TEXT_FIELDS) {
    fields.push(opt(tag, receipt[key]));
    if (tag === 'tstatus') {
      fields.push(opt('amount-authorized', optionalAmount(receipt.amountAuthorized)), opt('amount-other', optionalAmount(receipt.amountOther)));
    }
    if (tag === 'pan') fields.push(opt('plain-text-pan', options.plainTextPan ?? receipt.plainTextPanMasked));
  }
  if (receipt.cft) {
    fields.push(
      el(
        'cft',
        Object.entries(receipt.cft).map(([name, value]) => el(name, value)),
      ),
    );
  }
  fields.push(encodeLines('footer', receipt.footer), ...receipt.extras);
  return el('receipt', fields);
}

function optionalAmount(minor: number | undefined): string | undefined {
  return minor === undefined ? undefined : encodeAmount(minor);
}
