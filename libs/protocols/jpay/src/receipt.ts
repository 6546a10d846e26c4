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
import { decodeLines, encodeLines, mapOptional } from './codec-util';
import type { Receipt } from './messages';
import { maskPan } from './pan';
import { el, opt, type XmlElement } from './xml';

type TextKey = Exclude<keyof Receipt, 'header' | 'footer' | 'amountAuthorized' | 'amountOther' | 'cft' | 'extras' | 'applicationName' | 'plainTextPanMasked'>;

type WritableReceipt = { -readonly [K in keyof Receipt]?: Receipt[K] };

/** XML tag ↔ receipt property, in the order of the documents' example; `set` is a named store (fast: bench/jpay). */
const TEXT_FIELDS: ReadonlyArray<readonly [tag: string, key: TextKey, set: (receipt: WritableReceipt, value: string) => void]> = [
  ['tid', 'tid', (r, v) => (r.tid = v)],
  ['mid', 'mid', (r, v) => (r.mid = v)],
  ['seq', 'seq', (r, v) => (r.seq = v)],
  ['type', 'type', (r, v) => (r.type = v)],
  ['state', 'state', (r, v) => (r.state = v)],
  ['status', 'status', (r, v) => (r.status = v)],
  ['tstatus', 'tstatus', (r, v) => (r.tstatus = v)],
  ['currency', 'currency', (r, v) => (r.currency = v)],
  ['aid', 'aid', (r, v) => (r.aid = v)],
  ['ps-code', 'psCode', (r, v) => (r.psCode = v)],
  ['appname', 'appname', (r, v) => (r.appname = v)],
  ['apname', 'apname', (r, v) => (r.apname = v)],
  ['alabel', 'alabel', (r, v) => (r.alabel = v)],
  ['ict-id', 'ictId', (r, v) => (r.ictId = v)],
  ['pin-entered', 'pinEntered', (r, v) => (r.pinEntered = v)],
  ['cdcvm', 'cdcvm', (r, v) => (r.cdcvm = v)],
  ['signature', 'signature', (r, v) => (r.signature = v)],
  ['pan', 'pan', (r, v) => (r.pan = v)],
  ['aed', 'aed', (r, v) => (r.aed = v)],
  ['rrn', 'rrn', (r, v) => (r.rrn = v)],
  ['resp-code', 'respCode', (r, v) => (r.respCode = v)],
  ['resp-code-description', 'respCodeDescription', (r, v) => (r.respCodeDescription = v)],
  ['auth-number', 'authNumber', (r, v) => (r.authNumber = v)],
  ['datetime', 'datetime', (r, v) => (r.datetime = v)],
  ['tsi', 'tsi', (r, v) => (r.tsi = v)],
  ['tvr', 'tvr', (r, v) => (r.tvr = v)],
  ['decline-reason', 'declineReason', (r, v) => (r.declineReason = v)],
  ['acquirer-tag', 'acquirerTag', (r, v) => (r.acquirerTag = v)],
  ['bank-name', 'bankName', (r, v) => (r.bankName = v)],
  ['record', 'record', (r, v) => (r.record = v)],
  ['iface', 'iface', (r, v) => (r.iface = v)],
  ['tid-sbp', 'tidSbp', (r, v) => (r.tidSbp = v)],
  ['error-code', 'errorCode', (r, v) => (r.errorCode = v)],
];
const TEXT_INDEX_BY_TAG = new Map(TEXT_FIELDS.map(([tag], index) => [tag, index]));

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

/**
 * One walk over the receipt's children, writing the typed fields straight into the result (no
 * intermediate record, no compaction pass: this is the hot half of a transaction response, bench/jpay).
 * Text fields and header/footer keep their first occurrence, the other fields their last.
 */
export function decodeReceipt(block: XmlElement): Receipt {
  const texts: (string | undefined)[] = new Array<string | undefined>(TEXT_FIELDS.length);
  let header: string[] | undefined;
  let footer: string[] | undefined;
  const extras: XmlElement[] = [];
  let cft: Record<string, string> | undefined;
  let plainTextPanMasked: string | undefined;
  let amountAuthorized: number | undefined;
  let amountOther: number | undefined;
  for (const item of block.children) {
    const index = TEXT_INDEX_BY_TAG.get(item.name);
    if (index !== undefined) {
      texts[index] ??= item.text.trim();
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
        header ??= decodeLines(item);
        break;
      case 'footer':
        footer ??= decodeLines(item);
        break;
      default:
        extras.push(item);
    }
  }
  const out: Record<string, unknown> = { header: header ?? [], footer: footer ?? [] };
  for (let i = 0; i < texts.length; i++) if (texts[i] !== undefined) TEXT_FIELDS[i][2](out as WritableReceipt, texts[i]!);
  if (amountAuthorized !== undefined) out.amountAuthorized = amountAuthorized;
  if (amountOther !== undefined) out.amountOther = amountOther;
  if (plainTextPanMasked !== undefined) out.plainTextPanMasked = plainTextPanMasked;
  if (cft !== undefined) out.cft = cft;
  const receipt = out as unknown as Receipt;
  const applicationName = resolveApplicationName(receipt);
  if (applicationName !== undefined) out.applicationName = applicationName;
  out.extras = extras;
  return receipt;
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
