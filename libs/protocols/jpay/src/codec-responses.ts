/**
 * Responses (application → client), §8: the root tag repeats the command name ("Имя корневого тэга
 * ответа должно совпадать с именем указанным в запросе") and always carries `status`.
 * [JPAY-8-STATUS] a response without `status` is rejected (`FIELD_MISSING`).
 */
import { compact, decodeErrorStack, encodeErrorStack, requiredText } from './codec-util';
import { JpayError } from './errors';
import type { CommandName, JpayResponse, KeyChangeReceipt, MasterKeyResult, ResponseMap, TerminalParameters } from './messages';
import { decodeReceipt, encodeReceipt, type EncodeReceiptOptions } from './receipt';
import { decodeSettlementReport, decodeXReport, encodeSettlementReport, encodeXReport } from './report';
import { normalizeStatus } from './status';
import { child, childrenNamed, el, opt, textOf, type XmlElement } from './xml';

function decodeKeyChangeReceipt(block: XmlElement | undefined): KeyChangeReceipt | undefined {
  return block && compact({ rrn: textOf(block, 'rrn') });
}

function decodeMasterKey(key: XmlElement): MasterKeyResult {
  return compact({
    type: textOf(key, 'type') ?? '',
    algorithm: textOf(key, 'algorithm'),
    result: textOf(key, 'result'),
    kcv: textOf(key, 'kcv'),
  });
}

/** Decodes the response to `command`. The root name must match ([JPAY-4-ROOT]). */
export function decodeResponse<C extends CommandName>(command: C, root: XmlElement): ResponseMap[C] {
  if (root.name !== command) {
    throw new JpayError('UNEXPECTED_PACKET', `expected <${command}> response [JPAY-4-ROOT]`, {
      field: root.name,
    });
  }
  const base = {
    command,
    status: normalizeStatus(requiredText(root, 'status')),
    errors: decodeErrorStack(root),
  };
  const response = decodeBody(base, root);
  return response as ResponseMap[C];
}

function decodeBody(base: { command: CommandName; status: string; errors: string[] }, root: XmlElement): JpayResponse {
  switch (base.command) {
    case 'login':
      return compact({
        ...base,
        command: 'login',
        token: textOf(root, 'token'),
        serverHandshake: root.attrs['server-handshake'],
      });
    case 'loadworkkeys':
      return compact({
        ...base,
        command: 'loadworkkeys',
        macChangeReceipt: decodeKeyChangeReceipt(child(root, 'mac-change-receipt')),
        netChangeReceipt: decodeKeyChangeReceipt(child(root, 'net-change-receipt')),
      });
    case 'loadmasterkeys': {
      const receipt = child(root, 'receipt');
      const keys = receipt && child(receipt, 'keys');
      return compact({
        ...base,
        command: 'loadmasterkeys',
        receipt:
          receipt &&
          compact({
            pkcv: textOf(receipt, 'pkcv'),
            mkcv: textOf(receipt, 'mkcv'),
            keys: keys ? childrenNamed(keys, 'key').map(decodeMasterKey) : [],
          }),
      });
    }
    case 'getparameters': {
      const block = child(root, 'parameters');
      const parameters: TerminalParameters | undefined = block && Object.fromEntries(block.children.map((p) => [p.name, p.text.trim()]));
      return compact({ ...base, command: 'getparameters', parameters });
    }
    case 'transaction': {
      // The hot path (one per payment): no compaction pass, `base` holds no undefined.
      const receipt = child(root, 'receipt');
      return receipt
        ? { command: 'transaction', status: base.status, errors: base.errors, receipt: decodeReceipt(receipt) }
        : { command: 'transaction', status: base.status, errors: base.errors };
    }
    case 'report': {
      const xreport = child(root, 'xreport');
      return compact({ ...base, command: 'report', xreport: xreport && decodeXReport(xreport) });
    }
    case 'settlement': {
      const sreport = child(root, 'sreport');
      return compact({
        ...base,
        command: 'settlement',
        bankName: textOf(root, 'bank-name'),
        sreport: sreport && decodeSettlementReport(sreport),
      });
    }
    case 'clear': {
      const sreport = child(root, 'sreport');
      return compact({
        ...base,
        command: 'clear',
        sreport: sreport && decodeSettlementReport(sreport),
      });
    }
    case 'logout':
    case 'changepassword':
    case 'updateconfiguration':
    case 'testconnection':
    case 'resetpassword':
    case 'sethostkey':
    case 'runreset':
      return { ...base, command: base.command };
  }
}

function encodeKeyChangeReceipt(name: string, receipt: KeyChangeReceipt | undefined): XmlElement | undefined {
  return receipt && el(name, [opt('rrn', receipt.rrn)]);
}

/** Builds a response element (simulator side). */
export function encodeResponse(response: JpayResponse, options: EncodeReceiptOptions = {}): XmlElement {
  const body: (XmlElement | undefined)[] = [el('status', response.status)];
  let attrs: Record<string, string | undefined> = {};
  switch (response.command) {
    case 'login':
      body.push(opt('token', response.token));
      attrs = { 'server-handshake': response.serverHandshake };
      break;
    case 'loadworkkeys':
      body.push(
        encodeKeyChangeReceipt('mac-change-receipt', response.macChangeReceipt),
        encodeKeyChangeReceipt('net-change-receipt', response.netChangeReceipt),
      );
      break;
    case 'loadmasterkeys': {
      const receipt = response.receipt;
      if (receipt) {
        body.push(
          el('receipt', [
            opt('pkcv', receipt.pkcv),
            opt('mkcv', receipt.mkcv),
            receipt.keys.length > 0
              ? el(
                  'keys',
                  receipt.keys.map((k) => el('key', [el('type', k.type), opt('algorithm', k.algorithm), opt('result', k.result), opt('kcv', k.kcv)])),
                )
              : undefined,
          ]),
        );
      }
      break;
    }
    case 'getparameters':
      if (response.parameters) {
        body.push(
          el(
            'parameters',
            Object.entries(response.parameters)
              .filter((entry): entry is [string, string] => entry[1] !== undefined)
              .map(([name, value]) => el(name, value)),
          ),
        );
      }
      break;
    case 'transaction':
      if (response.receipt) body.push(encodeReceipt(response.receipt, options));
      break;
    case 'report':
      if (response.xreport) body.push(encodeXReport(response.xreport));
      break;
    case 'settlement':
      body.push(opt('bank-name', response.bankName));
      if (response.sreport) body.push(encodeSettlementReport(response.sreport));
      break;
    case 'clear':
      if (response.sreport) body.push(encodeSettlementReport(response.sreport));
      break;
    default:
      break;
  }
  if (response.errors.length > 0) body.push(encodeErrorStack(response.errors));
  return el(response.command, body, attrs);
}
