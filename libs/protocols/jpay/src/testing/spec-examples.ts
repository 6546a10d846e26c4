/**
 * Every XML example of the two documents (aqsi-cardcore-api.ru.txt, jpay-banking-app-protocol.ru.txt),
 * verbatim except for the typos listed in `corrections` (see shared/specs/jpay-notes.md: the documents'
 * typos are not XML and a real terminal sends well-formed XML). Elided values (`...`, `…`) are filled
 * with a plausible value of the documented format.
 */

export type ExampleKind = 'command' | 'response' | 'message' | 'reply';

export interface SpecExample {
  readonly id: string;
  readonly section: string;
  readonly kind: ExampleKind;
  /** For responses: the command they answer. */
  readonly command?: string;
  readonly xml: string;
  readonly corrections?: readonly string[];
}

const TOKEN = 'DE9773A8CB888560AB0F89C07623FE03';

export const SPEC_EXAMPLES: readonly SpecExample[] = [
  {
    id: 'login-notauthorized',
    section: '§8',
    kind: 'response',
    command: 'login',
    xml: `<login>\n  <status>notauthorized</status>\n</login>`,
  },
  {
    id: 'loadmasterkeys-error-stack',
    section: '§8',
    kind: 'response',
    command: 'loadmasterkeys',
    xml: `<loadmasterkeys>\n  <status>connectionerror</status>\n  <error-stack>\n    <error>486F7374206E616D65206973206E6F7420666F756E642E</error>\n  </error-stack>\n</loadmasterkeys>`,
  },
  { id: 'keepalive', section: '§8', kind: 'message', xml: `<keepalive/>` },
  {
    id: 'keepalive-reply',
    section: '§8',
    kind: 'reply',
    xml: `<keepalive>\n  <status>ok</status>\n</keepalive>`,
  },
  {
    id: 'login',
    section: '§8.1',
    kind: 'command',
    xml: `<login>\n  <password>12345678</password>\n</login>`,
  },
  {
    id: 'login-ok',
    section: '§8.1',
    kind: 'response',
    command: 'login',
    xml: `<login>\n  <status>ok</status>\n  <token>${TOKEN}</token>\n</login>`,
  },
  {
    id: 'logout',
    section: '§8.2',
    kind: 'command',
    xml: `<logout>\n  <token>${TOKEN}</token>\n</logout>`,
  },
  {
    id: 'logout-ok',
    section: '§8.2',
    kind: 'response',
    command: 'logout',
    xml: `<logout>\n  <status>ok</status>\n</logout>`,
  },
  {
    id: 'changepassword',
    section: '§8.3',
    kind: 'command',
    xml: `<changepassword>\n  <token>${TOKEN}</token>\n  <password>12345678</password>\n  <newpassword>12345678</newpassword>\n</changepassword>`,
  },
  {
    id: 'changepassword-ok',
    section: '§8.3',
    kind: 'response',
    command: 'changepassword',
    xml: `<changepassword>\n  <status>ok</status>\n</changepassword>`,
  },
  {
    id: 'updateconfiguration',
    section: '§8.4',
    kind: 'command',
    xml: `<updateconfiguration>\n  <token>${TOKEN}</token>\n</updateconfiguration>`,
  },
  {
    id: 'updateconfiguration-ok',
    section: '§8.4',
    kind: 'response',
    command: 'updateconfiguration',
    xml: `<updateconfiguration>\n  <status>ok</status>\n</updateconfiguration>`,
  },
  {
    id: 'loadworkkeys',
    section: '§8.5',
    kind: 'command',
    xml: `<loadworkkeys>\n  <token>${TOKEN}</token>\n</loadworkkeys>`,
  },
  {
    id: 'loadworkkeys-ok',
    section: '§8.5',
    kind: 'response',
    command: 'loadworkkeys',
    xml: `<loadworkkeys>\n  <status>ok</status>\n  <mac-change-receipt>\n    <rrn>123456789123</rrn>\n  </mac-change-receipt>\n  <net-change-receipt>\n    <rrn>023456789120</rrn>\n  </net-change-receipt>\n</loadworkkeys>`,
  },
  {
    id: 'loadmasterkeys',
    section: '§8.6',
    kind: 'command',
    xml: `<loadmasterkeys>\n  <token>${TOKEN}</token>\n</loadmasterkeys>`,
  },
  {
    id: 'loadmasterkeys-ok-aqsi',
    section: 'aQsi §Загрузка мастер ключей',
    kind: 'response',
    command: 'loadmasterkeys',
    xml: `<loadmasterkeys>\n  <status>ok</status>\n  <receipt>\n    <pkcv>123456</pkcv>\n    <mkcv>789ABC</mkcv>\n    <keys>\n      <key>\n        <type>10</type>\n        <algorithm>01</algorithm>\n        <result>success</result>\n        <kcv>B5A146</kcv>\n      </key>\n    </keys>\n  </receipt>\n</loadmasterkeys>`,
  },
  {
    id: 'loadmasterkeys-ok-jpay',
    section: 'JPAY §8.6',
    kind: 'response',
    command: 'loadmasterkeys',
    xml: `<loadmasterkeys> \n <status>ok</status> \n <receipt><pkcv>123456</pkcv><mkcv>789ABC</mkcv></receipt> \n</loadmasterkeys>`,
  },
  {
    id: 'testconnection',
    section: '§8.7',
    kind: 'command',
    xml: `<testconnection>\n  <token>${TOKEN}</token>\n</testconnection>`,
  },
  {
    id: 'testconnection-ok',
    section: '§8.7',
    kind: 'response',
    command: 'testconnection',
    xml: `<testconnection>\n<status>ok</status>\n</testconnection>`,
  },
  {
    id: 'getparameters',
    section: '§8.8',
    kind: 'command',
    xml: `<getparameters>\n  <token>${TOKEN}</token>\n</getparameters>`,
  },
  {
    id: 'getparameters-ok',
    section: '§8.8',
    kind: 'response',
    command: 'getparameters',
    xml: `<getparameters>
  <status>ok</status>
  <parameters>
    <sn>000000000009</sn>
    <app>1.0.67.6</app>
    <firmware-mcu>1.5.3</firmware-mcu>
    <firmware-boot>2.0.1</firmware-boot>
    <os>CS10_V1.07_181127PK</os>
    <sdk>1.0.4</sdk>
    <tid>1000000001</tid>
    <mid>243423434122313</mid>
    <tconf>19-04-01.01</tconf>
    <ntconf>cname</ntconf>
    <cconf>18-10-25.06</cconf>
    <ncconf>cname_test</ncconf>
    <econf>19-04-13.02</econf>
    <neconf>2can_jibe_emv</neconf>
    <kconf>18-08-30.04</kconf>
    <nkconf>combined_ca_database</nkconf>
    <acqid>twocan</acqid>
    <cccert>24.03.2027</cccert>
    <csca>20.11.2037</csca>
    <cshost>192.168.0.185</cshost>
    <accert>24.03.2027</accert>
    <asca>12.10.2020</asca>
    <ashost>192.168.0.2</ashost>
    <kccert>24.03.2027</kccert>
    <ksca>none</ksca>
    <devid>M2100-0000005164</devid>
  </parameters>
</getparameters>`,
  },
  {
    id: 'tx-purchase',
    section: '§8.9',
    kind: 'command',
    xml: `<transaction>\n  <type>purchase</type>\n  <currency>643</currency>\n  <amount>000000012300</amount>\n</transaction>`,
  },
  {
    id: 'tx-refund',
    section: '§8.9',
    kind: 'command',
    xml: `<transaction>\n  <type>refund</type>\n  <amount>000000012300</amount>\n  <rrn>120157645346</rrn>\n</transaction>`,
  },
  {
    id: 'tx-cashback',
    section: '§8.9',
    kind: 'command',
    xml: `<transaction>\n  <type>purchase-with-cashback</type>\n<amount>000000012300</amount>\n<amount-other>000000000100</amount-other>\n</transaction>`,
  },
  {
    id: 'tx-void-partial',
    section: '§8.9',
    kind: 'command',
    xml: `<transaction>\n  <type>void</type>\n  <number>8</number>\n  <amount>000000000100</amount>\n</transaction>`,
    corrections: ['JPAY: `<type>void/type>` → `<type>void</type>`'],
  },
  {
    id: 'tx-void-last',
    section: '§8.9',
    kind: 'command',
    xml: `<transaction>\n  <type>void</type>\n  <number>last</number>\n</transaction>`,
    corrections: ['JPAY: `<type>void/type>` → `<type>void</type>`'],
  },
  {
    id: 'tx-manual-pan',
    section: '§8.9 A',
    kind: 'command',
    xml: `<transaction>\n  <type>purchase</type>\n  <amount>000000012300</amount>\n  <pan>4000000010000001</pan>\n  <expired>1805</expired>\n  <password>12345678</password>\n  <cardholder>JOHN SMITH</cardholder>\n</transaction>`,
  },
  {
    id: 'tx-void-last-partial',
    section: 'aQsi §8.9 Б',
    kind: 'command',
    xml: `<transaction>\n  <type>void</type>\n  <number>last</number>\n  <amount>000000012300</amount>\n</transaction>`,
  },
  {
    id: 'tx-refund-forced',
    section: '§8.9 В',
    kind: 'command',
    xml: `<transaction>\n  <type>refund</type>\n  <amount>000000012300</amount>\n  <rrn>120157645346</rrn>\n  <forced>true</forced>\n</transaction>`,
  },
  {
    id: 'tx-void-forced',
    section: 'aQsi §8.9 В',
    kind: 'command',
    xml: `<transaction>\n  <type>void</type>\n  <amount>000000012300</amount>\n  <number>100</number>\n  <forced>true</forced>\n</transaction>`,
  },
  {
    id: 'tx-response',
    section: '§8.9',
    kind: 'response',
    command: 'transaction',
    corrections: ['JPAY: `<acquirer-tag>abc</acquired-tag>` → `</acquirer-tag>`', '`<record>A1234DF3…</record>` value completed'],
    xml: `<transaction>
  <status>ok</status>
  <receipt>
    <header>
      <line>Merchant Name</line>
      <line>Merchant Address</line>
    </header>
    <tid>1000000001</tid>
    <mid>012345678912345</mid>
    <seq>000009</seq>
    <type>purchase</type>
    <state>active</state>
    <tstatus>approved</tstatus>
    <amount-authorized>000000012300</amount-authorized>
    <amount-other>000000012300</amount-other>
    <currency>643</currency>
    <aid>A00000000031010</aid>
    <ps-code>VISA Classic</ps-code>
    <appname>VISA Classic</appname>
    <pan>*****1234</pan>
    <aed>200331</aed>
    <rrn> 120157645346</rrn>
    <resp-code>000</resp-code>
    <auth-number>AFK045</auth-number>
    <datetime>180328120133</datetime>
    <tsi>EF00</tsi>
    <tvr>2040300000</tvr>
    <decline-reason/>
    <acquirer-tag>abc</acquirer-tag>
    <bank-name>demo</bank-name>
    <footer>
      <line>Byte</line>
    </footer>
    <record>A1234DF3</record>
  </receipt>
  <error-stack/>
</transaction>`,
  },
  {
    id: 'display',
    section: '§8.9',
    kind: 'message',
    xml: `<display>\n  <code>03</code>\n  <language>ruen</language>\n  <msg>ОДОБРЕНО</msg>\n  <status>02</status>\n  <hold-time>000000</hold-time>\n  <value-qualifier>00</value-qualifier>\n  <value>000000000000</value>\n  <currency>643</currency>\n</display>`,
  },
  {
    id: 'dex',
    section: '§8.9',
    kind: 'message',
    corrections: ['JPAY: typographic quotes and a stray `<code>` inside `<tag>` replaced by the aQsi form'],
    xml: `<dex>\n  <kernel-tags>\n    <tag name="5A" value="01234567890ABCDEF" />\n</kernel-tags>  \n</dex>`,
  },
  {
    id: 'dex-reply',
    section: '§8.9',
    kind: 'reply',
    xml: `<dex>  \n  <status>ok</status>  \n  <terminal-tags>  \n    <tag name="9F06" value="000000001000" />  \n  </terminal-tags>  \n</dex>`,
  },
  {
    id: 'smartcard-newcard',
    section: 'aQsi smartcard',
    kind: 'message',
    xml: `<smartcard>  \n  <command>newcard</command>  \n  <descriptor>0705804E4B097000440028</descriptor>  \n</smartcard>`,
  },
  {
    id: 'smartcard-next',
    section: 'aQsi smartcard',
    kind: 'reply',
    xml: `<smartcard>  \n  <command>next</command>  \n</smartcard>`,
  },
  {
    id: 'smartcard-end',
    section: 'aQsi smartcard',
    kind: 'reply',
    xml: `<smartcard>  \n  <command>end</command>  \n  <indicator>ok</indicator>  \n</smartcard>`,
  },
  {
    id: 'smartcard-retry',
    section: 'aQsi smartcard',
    kind: 'reply',
    xml: `<smartcard>\n  <command>retry</command>\n</smartcard>`,
  },
  {
    id: 'card-open',
    section: 'JPAY §8.9 card',
    kind: 'message',
    xml: `<card> \n <code>open</code> \n <block-id>0</block-id> \n <payload>AbqR4t==</payload> \n</card>`,
  },
  {
    id: 'card-read-request',
    section: 'JPAY §8.9 card',
    kind: 'reply',
    corrections: ['`<code>read</read>` → `</code>`'],
    xml: `<card> \n <code>read</code> \n <block-id>0</block-id> \n</card>`,
  },
  {
    id: 'card-read-result',
    section: 'JPAY §8.9 card',
    kind: 'message',
    xml: `<card> \n <code>read</code> \n <status>ok</status> \n <payload>AbqR4t==</payload> \n</card>`,
  },
  {
    id: 'card-write-request',
    section: 'JPAY §8.9 card',
    kind: 'reply',
    corrections: ['`<block-id>1</block-d>` → `</block-id>`'],
    xml: `<card> \n <code>write</code> \n <block-id>1</block-id> \n <payload>AbqR4t==</payload> \n</card>`,
  },
  {
    id: 'card-write-result',
    section: 'JPAY §8.9 card',
    kind: 'message',
    xml: `<card> \n <code>write</code> \n <status>ok</status> \n</card>`,
  },
  {
    id: 'card-close',
    section: 'JPAY §8.9 card',
    kind: 'reply',
    xml: `<card> \n <code>close</code> \n <receipt> \n  <status>approved</status> \n  <datetime>2210111200</datetime> \n  <amount>1000</amount> \n </receipt> \n</card>`,
  },
  {
    id: 'qr-show',
    section: '§8.10',
    kind: 'message',
    xml: `<displayqrcode>\n  <status>show</status>\n  <url>https://example.com/qrcode/jAhh76JhjK</url>\n</displayqrcode>`,
  },
  {
    id: 'qr-hide',
    section: '§8.10',
    kind: 'message',
    xml: `<displayqrcode>\n  <status>hide</status>\n</displayqrcode>`,
  },
  {
    id: 'tx-sbp-payment',
    section: '§8.10',
    kind: 'command',
    corrections: ['`<transaction type="payment" force-sbp="true" …>` completed with the documented child elements'],
    xml: `<transaction type="payment" force-sbp="true"><amount>000000012300</amount></transaction>`,
  },
  {
    id: 'tx-sbp-response',
    section: '§8.10',
    kind: 'response',
    command: 'transaction',
    xml: `<transaction>
  <status>ok</status>
  <receipt>
<header>
    <line>Merchant Name</line>
    <line>Merchant Address</line>
</header>
<tid>1000000001</tid>
<mid>012345678912345</mid>
<seq>000009</seq>
<type>purchase</type>
<status>approved</status>
<amount-authorized>000000012300</amount-authorized>
<currency>643</currency>
<rrn>120157645346</rrn>
<resp-code>000</resp-code>
<auth-number>AFK045</auth-number>
<datetime>180328120133</datetime>
<iface>sbp</iface>
<tid-sbp>123456789A2</tid-sbp>
<bank-name>БАНК</bank-name>
</receipt>
<error-stack/>
</transaction>`,
  },
  {
    id: 'tx-sbp-cft-response',
    section: '§8.10 CFT',
    kind: 'response',
    command: 'transaction',
    corrections: ['the CFT example is a bare <receipt>; wrapped in <transaction><status>ok</status>'],
    xml: `<transaction><status>ok</status>
<receipt>
  <header />
  <mid>MA0000086770</mid>
  <seq>53</seq>
  <type>purchase</type>
  <status>approved</status>
  <tstatus>approved</tstatus>
  <amount-authorized>00000000110</amount-authorized>
  <currency>643</currency>
  <rrn>232796</rrn>
  <auth-number></auth-number>
  <resp-code></resp-code>
  <datetime>220822153936</datetime>
  <iface>sbp</iface>
  <tid-sbp>123456789A2</tid-sbp>
  <bank-name>БАНК</bank-name>
  <cft>
    <localQrcId>232796</localQrcId>
    <pointId>7f7f65af-7de3-44ec-8c89-8e97c52c6f0e</pointId>
    <mpiOperationStatusDescriptionEng>Payment accepted
    </mpiOperationStatusDescriptionEng>
    <mpiOperationStatusDescriptionRus>Платеж завершен успешно
    </mpiOperationStatusDescriptionRus>
    <qrcId>AD100031024RJFCM9NKREDRU8IUPC1N0</qrcId>
    <extEntityId>1F8BOHBWEMC</extEntityId>
    <paymentPurpose>Оплата товара или услуги</paymentPurpose>
  </cft>
  <error-code>ok</error-code>
  <footer />
</receipt></transaction>`,
  },
  {
    id: 'report',
    section: '§8.11',
    kind: 'command',
    xml: `<report>\n  <password>12345678</password>\n  <report-type>brief</report-type>\n</report>`,
  },
  {
    id: 'report-ok',
    section: '§8.11',
    kind: 'response',
    command: 'report',
    corrections: [
      '`<line1>Header line 1</line>` → `<line1>…</line1>`',
      '`<refund-count100</refund-count>` → `<refund-count>100</refund-count>`',
      'stray `1` after `</purchase-count>` removed',
      '`<refund-ctotal-ount100</refund-total-count>` → `<refund-total-count>100</refund-total-count>`',
      '`<purchase-with-cashback-stotal-sum>` → `<purchase-with-cashback-total-sum>`',
      '`</refund-total-reversal-sum>` → `</refund-reversal-total-sum>`',
      '`...` placeholders removed',
    ],
    xml: `<report>
  <status>ok</status>
  <xreport>
    <header>
      <mid>M123456789012345</mid>
      <tid>1000000001</tid>
      <title>
        <line1>Header line 1</line1>
      </title>
      <cur>643</cur>
      <time>189329120002</time>
    </header>
    <transactions>
      <t>
        <status>approved</status>
        <state>active</state>
        <type>refund</type>
        <seq>000009</seq>
        <aa>000000001000</aa>
        <ao>000000000100</ao>
        <rrn>647394847384</rrn>
        <time>180322121408</time>
        <apn>AFJ879</apn>
        <arc>000</arc>
        <cur>643</cur>
        <pan>*****1234</pan>
        <aed>211231</aed>
        <aid>A0000000031010</aid>
        <tvr>0000000000</tvr>
        <tsi>000000</tsi>
      </t>
    </transactions>
    <totals>
      <card-type>
        <rid>A000000003</rid>
        <name>VISA</name>
        <purchase-count>100</purchase-count>
        <purchase-sum>000000010000</purchase-sum>
        <refund-count>100</refund-count>
        <refund-sum>000000010000</refund-sum>
        <purchase-with-cashback-count>
          100
        </purchase-with-cashback-count>
        <purchase-with-cashback-sum>
          000000010000
        </purchase-with-cashback-sum>
        <purchase-reversal-count>
          100
        </purchase-reversal-count>
    <purchase-reversal-sum>
    000000010000
  </purchase-reversal-sum>
  <refund-reversal-count>2</refund-reversal-count>
  <refund-reversal-sum>
  000000010000
  </refund-reversal-sum>
  <total-card-sum>C000000010000</total-card-sum>
  <total-card-count>400</total-card-count>
</card-type>
</totals>
<grand-totals>
  <purchase-total-count>100</purchase-total-count>
  <purchase-total-sum>000000010000</purchase-total-sum>
  <refund-total-count>100</refund-total-count>
  <refund-total-sum>000000010000</refund-total-sum>
  <purchase-with-cashback-total-count>
  100
  </purchase-with-cashback-total-count>
  <purchase-with-cashback-total-sum>
  000000010000
  </purchase-with-cashback-total-sum>
  <purchase-reversal-total-count>
  100
  </purchase-reversal-total-count>
  <purchase-reversal-total-sum>
  000000010000
  </purchase-reversal-total-sum>
  <refund-reversal-total-count>
  2
  </refund-reversal-total-count>
  <refund-reversal-total-sum>
  000000010000
  </refund-reversal-total-sum>
  <total-sum>C000000010000</total-sum>
  <total-count>400</total-count>
</grand-totals>
</xreport>
</report>`,
  },
  {
    id: 'settlement-aqsi',
    section: 'aQsi §Сверка итогов',
    kind: 'command',
    xml: `<settlement>\n  <password>12345678</password>\n  <force>on</force>\n</settlement>`,
  },
  {
    id: 'settlement-jpay',
    section: 'JPAY §8.12',
    kind: 'command',
    xml: `<settlement> \n <password>12345678</password> \n</settlement>`,
  },
  {
    id: 'settlement-ok',
    section: '§8.12',
    kind: 'response',
    command: 'settlement',
    xml: `<settlement>
  <status>ok</status>
  <bank-name>BANK</bank-name>
<sreport>
  <resp-code>000</resp-code>
  <approval-number>ASD002</approval-number>
  <rrn>837495759322</rrn>
  <orig-amount>D003030001000</orig-amount>
  <amount>D003030001000</amount>
  <datetime>180322102354</datetime>
  <tid>1000000001</tid>
  <mid>123456789012345</mid>
  <cur>643</cur>
  <from>190101100000</from>
  <to>190102110000</to>
  <tnum>100</tnum>
  <batch-upload>passed</batch-upload>
  <art-resp-code>00</art-resp-code>
  <cov-resp-code>00</cov-resp-code>
  <cov-rrn>123456789012</cov-rrn>
  <settlement-result>passed</settlement-result>
</sreport>
</settlement>`,
  },
  {
    id: 'clear',
    section: '§8.13',
    kind: 'command',
    xml: `<clear>\n  <password>12345678</password>\n</clear>`,
  },
  {
    id: 'clear-ok',
    section: '§8.13',
    kind: 'response',
    command: 'clear',
    xml: `<clear>\n  <status>ok</status>\n  <sreport>\n    <resp-code>000</resp-code>\n    <approval-number>ASD002</approval-number>\n    <rrn>837495759322</rrn>\n    <orig-amount>D003030001000</orig-amount>\n    <amount>D003030001000</amount>\n    <datetime>180322102354</datetime>\n    <tid>1000000001</tid>\n    <mid>123456789012345</mid>\n  </sreport>\n</clear>`,
  },
  { id: 'resetpassword', section: '§8.14', kind: 'command', xml: `<resetpassword/>` },
  {
    id: 'resetpassword-ok',
    section: '§8.14',
    kind: 'response',
    command: 'resetpassword',
    xml: `<resetpassword>\n  <status>ok</status>\n</resetpassword>`,
  },
  {
    id: 'sethostkey',
    section: '§8.15',
    kind: 'command',
    corrections: ['`Abc8dEfg…` completed as base64'],
    xml: `<sethostkey>\n  <token>${TOKEN}</token>\n  <name>hkey1</name>\n  <material>Abc8dEfg</material>\n</sethostkey>`,
  },
  {
    id: 'sethostkey-ok',
    section: '§8.15',
    kind: 'response',
    command: 'sethostkey',
    xml: `<sethostkey>  \n  <status>ok</status>  \n</sethostkey>`,
  },
  {
    id: 'login-secure',
    section: '§9',
    kind: 'command',
    corrections: ['the elided handshake is the test vector of jpay-notes.md'],
    xml: `<login client-handshake="AwAXQQQCF+YX8LZEOSgnj5aZnmmiOk8sFSvfbWzfZuW4AoLU7RlKfevLl3EtLdo8qFqodlpW9F/HWFmWUvKJfGUwbleU">  \n  <password>12345678</password>  \n</login>`,
  },
  {
    id: 'login-secure-ok',
    section: '§9',
    kind: 'response',
    command: 'login',
    corrections: ['elided values are the test vector of jpay-notes.md'],
    xml: `<login server-handshake="QQTWWpOXfKo9GwgYUv9Xp55GXxZgV3MEuurVBd06SFic81AYXolTct9iIeo6E3VX5HP922dV8FvVB8PFM/zpyRKF">  \n  <encrypted>OlC6FPvh23wQngpT3tX5KgABAgMEBQYHCAkKCwwNDg8CNjttse069j7fycVEJQbohInJ2+QctbtXpru8vqoJ0w8P51VH8tzox6pXgFK6wwP1BRDF41oABV4kuzZj/2JwGP9lO4CMan/ACshfOPAWfMm3ZOK1</encrypted>  \n</login>`,
  },
  {
    id: 'runreset',
    section: '§10',
    kind: 'command',
    xml: `<runreset>\n  <token>${TOKEN}</token>\n</runreset>`,
  },
  {
    id: 'runreset-keepalive-aqsi',
    section: 'aQsi §Инициализация',
    kind: 'message',
    xml: `<keepalive>\n  <reset-connected-indicator>0</reset-connected-indicator>\n</keepalive>`,
  },
  {
    id: 'runreset-keepalive-jpay',
    section: 'JPAY §10',
    kind: 'message',
    xml: `<keep-alive> \n <reset-connected-indicator>0</reset-connected-indicator> \n</keep-alive>`,
  },
  {
    id: 'runreset-ok',
    section: '§10',
    kind: 'response',
    command: 'runreset',
    xml: `<runreset>\n  <status>ok</status>\n</runreset>`,
  },
];

/** The decrypted body of `login-secure-ok` (jpay-notes.md test vector). */
export const SECURE_LOGIN_PLAINTEXT = '<encrypted-data><status>ok</status><token>392480923040932923</token></encrypted-data>';

/** jpay-notes.md test vector. */
export const CRYPTO_VECTOR = {
  clientPrivateKey: '11'.repeat(32),
  serverPrivateKey: '22'.repeat(32),
  clientHandshake: 'AwAXQQQCF+YX8LZEOSgnj5aZnmmiOk8sFSvfbWzfZuW4AoLU7RlKfevLl3EtLdo8qFqodlpW9F/HWFmWUvKJfGUwbleU',
  serverHandshake: 'QQTWWpOXfKo9GwgYUv9Xp55GXxZgV3MEuurVBd06SFic81AYXolTct9iIeo6E3VX5HP922dV8FvVB8PFM/zpyRKF',
  sharedSecret: 'ccfc261f58193c98ca4ad4a53bbac6f0ee29bc4d48438090446908622ca79af6',
  iv: '000102030405060708090a0b0c0d0e0f',
  plaintext: SECURE_LOGIN_PLAINTEXT,
  encrypted:
    'OlC6FPvh23wQngpT3tX5KgABAgMEBQYHCAkKCwwNDg8CNjttse069j7fycVEJQbohInJ2+QctbtXpru8vqoJ0w8P51VH8tzox6pXgFK6wwP1BRDF41oABV4kuzZj/2JwGP9lO4CMan/ACshfOPAWfMm3ZOK1',
} as const;

/** Typos of the documents that must be rejected as malformed XML, verbatim. */
export const MALFORMED_SPEC_SNIPPETS: readonly string[] = [
  '<transaction>\n <type>void/type>\n <number>last</number>\n</transaction>',
  '<receipt><acquirer-tag>abc</acquired-tag></receipt>',
  '<totals><refund-count100</refund-count></totals>',
  '<grand-totals><refund-reversal-total-sum>1</refund-total-reversal-sum></grand-totals>',
  '<confdata><sign>CDEF5678..<sign></confdata>',
  '<encrypted-data><status>ok</status><encrypted-data>',
];
