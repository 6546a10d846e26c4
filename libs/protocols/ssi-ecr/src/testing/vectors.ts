/**
 * Test vectors: golden frames from ../shared/specs/ssi-ecr-notes.md and every JSON example of the spec
 * (section 5), transcribed with the document's typographic quotes and missing commas fixed.
 * `corrections` lists where the document's example is internally inconsistent.
 */

export interface GoldenFrame {
  readonly json: string;
  readonly frameHex: string;
}

/** ssi-ecr-notes.md "Golden frames (payload-only XOR LRC)". */
export const GOLDEN_FRAMES: readonly GoldenFrame[] = [
  { json: '{"method":"PingDevice"}', frameHex: '02660100177b226d6574686f64223a2250696e67446576696365227d2b' },
  { json: '{"method": "GetStatus"}', frameHex: '02660100177b226d6574686f64223a2022476574537461747573227d61' },
  { json: '{"method": "GetLastResult"}', frameHex: '026601001b7b226d6574686f64223a20224765744c617374526573756c74227d56' },
];

/** ssi-ecr-notes.md: malformed frames and the terminal's reaction. */
export const MALFORMED_FRAMES = {
  /** DATA = "!": good LRC, bad JSON → E03. */
  badJson: '02660100012121',
} as const;

export interface RequestExample {
  readonly section: string;
  readonly json: string;
  /** The typed request the JSON must decode to. */
  readonly typed: unknown;
  readonly corrections?: readonly string[];
}

const PRINT_XML_RECEIPT = '<receipt><text align="center" size="normal" weight="normal" darkness="normal">printtest</text><image>B64 Image</image></receipt>';

export const REQUEST_EXAMPLES: readonly RequestExample[] = [
  {
    section: '5.2.1.1 Purchase',
    json: '{"method":"Purchase","params":{"transAmount":"24500","transCurrency":"980","merchantId":"000000060007176","discountedAmount":"22300"}}',
    typed: { method: 'Purchase', params: { transAmount: 24500, transCurrency: '980', merchantId: '000000060007176', discountedAmount: 22300 } },
    corrections: ['the inline comment after discountedAmount is not JSON and was removed'],
  },
  { section: '5.2.2 Void', json: '{"method":"Void","params":{"invoiceNum":"000456"}}', typed: { method: 'Void', params: { invoiceNum: '000456' } } },
  {
    section: '5.2.3 Refund',
    json: '{"method":"Refund","params":{"transAmount":"24500","transCurrency":"980","rrn":"987612344098","merchantId":"000000060007176"}}',
    typed: { method: 'Refund', params: { transAmount: 24500, transCurrency: '980', rrn: '987612344098', merchantId: '000000060007176' } },
  },
  {
    section: '5.2.4 CashBack',
    json: '{"method":"CashBack","params":{"transAmount":"24500","cashAmount":"700","transCurrency":"980","merchantId":"000000060007176","terminalId":"SSI00001"}}',
    typed: { method: 'CashBack', params: { transAmount: 24500, cashAmount: 700, transCurrency: '980', merchantId: '000000060007176', terminalId: 'SSI00001' } },
  },
  {
    section: '5.2.5 Preauthorization',
    json: '{"method":"Preauthorization","params":{"transAmount":"24500","transCurrency":"980","merchantId":"000000060007176"}}',
    typed: { method: 'Preauthorization', params: { transAmount: 24500, transCurrency: '980', merchantId: '000000060007176' } },
  },
  {
    section: '5.2.6 SalePreauth',
    json: '{"method":"SalePreauth","params":{"transAmount":"24500","endAmount":"27000","transCurrency":"980","rrn":"987612344098","authCode":"86429E","merchantId":"000000060007176"}}',
    typed: {
      method: 'SalePreauth',
      params: { transAmount: 24500, endAmount: 27000, transCurrency: '980', rrn: '987612344098', authCode: '86429E', merchantId: '000000060007176' },
    },
  },
  {
    section: '5.2.7 VoidPreauth',
    json: '{"method":"VoidPreauth","params":{"invoiceNum":"000456"}}',
    typed: { method: 'VoidPreauth', params: { invoiceNum: '000456' } },
  },
  {
    section: '5.2.8 Cash',
    json: '{"method":"Cash","params":{"transAmount":"24500","transCurrency":"980","merchantId":"000000060007176"}}',
    typed: { method: 'Cash', params: { transAmount: 24500, transCurrency: '980', merchantId: '000000060007176' } },
  },
  {
    section: '5.2.9 Deposit',
    json: '{"method":"Deposit","params":{"transAmount":"24500","transCurrency":"980","merchantId":"000000060007176"}}',
    typed: { method: 'Deposit', params: { transAmount: 24500, transCurrency: '980', merchantId: '000000060007176' } },
  },
  {
    section: '5.2.10 Balance',
    json: '{"method":"Balance","params":{"transCurrency":"980","merchantId":"000000060007176"}}',
    typed: { method: 'Balance', params: { transCurrency: '980', merchantId: '000000060007176' } },
  },
  {
    section: '5.2.11 Echo',
    json: '{"method":"Echo","params":{"merchantId":"000000060007176"}}',
    typed: { method: 'Echo', params: { merchantId: '000000060007176' } },
  },
  {
    section: '5.2.12 PartialVoid',
    json: '{"method":"PartialVoid","params":{"invoiceNum":"000456","transAmount":"24500"}}',
    typed: { method: 'PartialVoid', params: { invoiceNum: '000456', transAmount: 24500 } },
  },
  {
    section: '5.3.1 ZReport',
    json: '{"method":"ZReport","params":{"merchantId":"000000060007176","isDetailReport":true}}',
    typed: { method: 'ZReport', params: { merchantId: '000000060007176', isDetailReport: true } },
  },
  {
    section: '5.3.2 XReport',
    json: '{"method":"XReport","params":{"merchantId":"000000060007176","isDetailReport":true}}',
    typed: { method: 'XReport', params: { merchantId: '000000060007176', isDetailReport: true } },
  },
  { section: '5.4.1 GetStatus', json: '{"method":"GetStatus"}', typed: { method: 'GetStatus' } },
  { section: '5.4.2 Interrupt', json: '{"method":"Interrupt"}', typed: { method: 'Interrupt' } },
  { section: '5.4.3 Restart', json: '{"method":"Restart"}', typed: { method: 'Restart' } },
  { section: '5.5.1 GetLastResult', json: '{"method":"GetLastResult"}', typed: { method: 'GetLastResult' } },
  { section: '5.5.2 GetLastReceipt', json: '{"method":"GetLastReceipt"}', typed: { method: 'GetLastReceipt' } },
  { section: '5.5.3 PingDevice', json: '{"method":"PingDevice"}', typed: { method: 'PingDevice' } },
  { section: '5.5.4 GetLastReport', json: '{"method":"GetLastReport"}', typed: { method: 'GetLastReport' } },
  { section: '5.5.5 GetMerchantList', json: '{"method":"GetMerchantList"}', typed: { method: 'GetMerchantList' } },
  { section: '5.5.6 GetLastReportReceipt', json: '{"method":"GetLastReportReceipt"}', typed: { method: 'GetLastReportReceipt' } },
  {
    section: '5.5.7 PrintXml',
    json: JSON.stringify({ method: 'PrintXml', params: { lrc: '8', fontStyle: 'xxx.ttf', receipt: PRINT_XML_RECEIPT } }),
    typed: { method: 'PrintXml', params: { receipt: PRINT_XML_RECEIPT, fontStyle: 'xxx.ttf' } },
    corrections: ['the example lrc "26" is not the LRC of its placeholder receipt; XOR of its UTF-8 bytes is 8'],
  },
  {
    section: '5.5.8 PrintPdfUrl',
    json: '{"method":"PrintPdfUrl","params":{"url":"https://docs.google.com/document/d/sample.pdf"}}',
    typed: { method: 'PrintPdfUrl', params: { url: 'https://docs.google.com/document/d/sample.pdf' } },
    corrections: ['the example url is prose; the URL from table 4.3.2 is used'],
  },
  { section: '5.5.9 GetTerminalInfo', json: '{"method":"GetTerminalInfo"}', typed: { method: 'GetTerminalInfo' } },
  { section: '5.5.10 RestartPaymentApp', json: '{"method":"RestartPaymentApp"}', typed: { method: 'RestartPaymentApp' } },
];

export const PRINT_XML_EXAMPLE_RECEIPT = PRINT_XML_RECEIPT;

/** Responses of section 5, as sent by a terminal. */
export const RESPONSE_EXAMPLES = {
  '5.1 error':
    '{"method":"Purchase","error":true,"errorCode":"E01","errorDescription":"Версія протоколу не підтримується терміналом","params":{"details":"actual: ee, expected: 66"}}',
  '5.2.1.2 ack': '{"method":"Purchase","error":false,"errorCode":"","errorDescription":"","params":{}}',
  '5.2.11 Echo': '{"method":"Echo","error":false,"errorCode":"","errorDescription":"","params":{}}',
  '5.4.1 GetStatus': '{"method":"GetStatus","error":false,"errorCode":"","errorDescription":"","status":"S00","params":{}}',
  '5.4.2 Interrupt': '{"method":"Interrupt","error":false,"errorCode":"","errorDescription":"","params":{}}',
  '5.4.3 Restart': '{"method":"Restart","error":false,"errorCode":"","errorDescription":"","status":"S00"}',
  '5.5.1 GetLastResult': JSON.stringify({
    method: 'GetLastResult',
    error: false,
    errorCode: '',
    errorDescription: '',
    params: {
      originalTrnName: 'Purchase',
      transAmount: '24500',
      discount: '500',
      authCode: '123456',
      date: '08/11/2023',
      time: '11:34:14',
      invoiceNum: '999999',
      bankName: 'Bank Acquirer',
      merchantId: 'MERCHANT1',
      pan: '4725XXXXXXXX1627',
      responseCode: '0000',
      rrn: '9999999999999',
      transactionResult: 'APPROVED-ONLINE',
      terminalId: 'T0000001',
      posEntryMode: 'CONTACTLESS',
      binName: 'VISA',
      track2: '4402722218390184=26092011881002000001',
      cardHolderName: 'MR CARDHOLDER',
      parEnabled: true,
      parValue: '7',
      balance: '99958881159',
      errorDetails: '',
    },
  }),
  '5.5.2 GetLastReceipt': '{"method":"GetLastReceipt","error":false,"errorCode":"","errorDescription":"","params":{"receipt":"Receipt text"}}',
  '5.5.3 PingDevice': '{"method":"PingDevice","error":false,"errorCode":"","errorDescription":"","params":{}}',
  '5.5.4 GetLastReport': JSON.stringify({
    method: 'GetLastReport',
    error: false,
    errorCode: '',
    errorDescription: '',
    params: {
      transactions: [
        {
          originalTrnName: 'Purchase',
          transAmount: '24500',
          authCode: '123456',
          date: '08/11/2023',
          time: '11:34:14',
          invoiceNum: '999999',
          pan: '4725XXXXXXXX1627',
          responseCode: '0000',
          rrn: '9999999999999',
          binName: 'VISA',
        },
      ],
      responseCode: '',
      totalSaleCount: '2',
      totalSaleAmount: '123',
      totalFinAuthCount: '0',
      totalFinAuthAmount: '0',
      totalRefundCount: '0',
      totalRefundAmount: '0',
      totalCashCount: '1',
      totalCashAmount: '23',
      totalPaymentCount: '1',
      totalPaymentAmount: '11',
      totalVoidCount: '0',
      totalVoidAmount: '0',
      isBatchEmpty: true,
      batchNumber: '999',
    },
  }),
  '5.5.5 GetMerchantList':
    '{"method":"GetMerchantList","error":false,"errorCode":"","errorDescription":"","params":{"merchantCount":2,"merchantList":["mer1","mer2"]}}',
  '5.5.6 GetLastReportReceipt': '{"method":"GetLastReportReceipt","error":false,"errorCode":"","errorDescription":"","params":{"receipt":"Receipt text"}}',
  '5.5.7 PrintXml': '{"method":"PrintXml","error":false,"errorCode":"","errorDescription":"","params":{}}',
  '5.5.8 PrintPdfUrl': '{"method":"PrintPdfUrl","error":false,"errorCode":"","errorDescription":"","params":{}}',
  '5.5.9 GetTerminalInfo android': JSON.stringify({
    method: 'GetTerminalInfo',
    errorCode: '',
    errorDescription: '',
    error: false,
    params: {
      securityDriver: { name: 'ServiceVer', versionName: 'X990-V1.0.12(202111221449)' },
      terminalModel: 'Verifone X990',
      sdkVersion: 25,
      androidVersion: '7.1.2 (N_MR1)',
      serviceApps: [
        { name: 'VFSystemService', packageName: 'com.vfi.smartpos.system_service', versionName: '1.11.2' },
        { name: 'VFService', packageName: 'com.vfi.smartpos.deviceservice', versionName: '3.11.2.3' },
      ],
      currentApp: { name: 'MonoBank', packageName: 'com.paydustry.banking.monobank', versionName: '1.2.0.010' },
      terminalSerialNumber: 'V1E0207420',
      thirdPartyApps: [
        { name: 'SSI QMate POS kiosk (d)', packageName: 'com.ssi.kiosk.debug', versionName: '1.0.10-dev' },
        { name: 'SM Pos', packageName: 'com.TFPK.SMPos', versionName: '1.10.19' },
        { name: 'Agent-debug', packageName: 'com.paydustry.agent', versionName: '4.1.5' },
        { name: 'SSI QMate POS kiosk', packageName: 'com.ssi.kiosk', versionName: '1.1.1' },
        { name: 'checkbox Verifone', packageName: 'ua.in.checkbox.verifone', versionName: '0.6.49' },
      ],
      rom: { name: 'ROM', versionName: 'V1.1.1.202111150949 INTLv7' },
      paymentApps: [
        { name: 'MonoBank', packageName: 'com.paydustry.banking.monobank', versionName: '1.2.0.010' },
        { name: 'Raif', packageName: 'com.paydustry.banking.raif', versionName: '1.0.1.75' },
        { name: 'PivdennyBank', packageName: 'com.paydustry.banking.pivdennybank', versionName: '1.5.0.008' },
      ],
      externalRegisterApps: [],
    },
  }),
  '5.5.9 GetTerminalInfo linux': JSON.stringify({
    method: 'GetTerminalInfo',
    error: false,
    errorCode: '',
    errorDescription: '',
    params: {
      model: 'SP880',
      boot_version: '01.00_00_000019',
      devcfg_version: 'SP880.3652010.014',
      os_version: '9.0.3.0_20231017',
      napi_api_version: 'NAPI_API_V2.7.0',
      pci_fw_version: 'D_01.00_9000300',
      pos_sn: 'B9AA00176476',
    },
  }),
  '5.5.10 RestartPaymentApp': '{"method":"RestartPaymentApp","error":false,"errorCode":"","errorDescription":"","params":{}}',
} as const;
