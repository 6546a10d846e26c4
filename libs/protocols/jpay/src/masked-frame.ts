import { isSealed } from './envelope';
import { redactEmvTags } from './events';
import { maskPan } from './pan';
import { parseXmlBytes, writeXml, type XmlElement } from './xml';

/** A packet as an operation journal may keep it: what it is, and its XML with card data and secrets masked. */
export interface MaskedFrame {
  /** The root element, e.g. `transaction`, `display`, `transaction (encrypted)`. */
  readonly summary: string;
  /** The packet's XML, redacted. */
  readonly masked: string;
}

const REDACTED = '[redacted]';

/**
 * Element and attribute names whose value is a secret or card data other than the PAN: passwords (login,
 * manual entry, changepassword), tokens, key material and check values (loadmasterkeys, sethostkey), the
 * §9 handshake public keys, track data, PIN blocks, CVV, expiry and the cardholder's name.
 */
const SECRET_NAME = /pass|token|material|key|kcv|handshake|track|pin-?block|^pin$|cvv|cvc|expir|holder|secret/i;
/** Element names holding a PAN (`pan` of a manual entry, `plain-text-pan` of §9, receipt `pan`). */
const PAN_NAME = /(^|-)pan$/i;

/**
 * Log-safe rendering of one packet payload (the XML `FrameDecoder` yields, length prefix stripped) for an
 * operation's timeline. PANs are masked first 6 / last 4, EMV tags holding card data go through
 * `redactEmvTags`, passwords, tokens, keys and handshakes are replaced by `[redacted]`. An encrypted
 * packet (§9) is shown as its envelope only — root name and attribute names — since the key is the
 * session's, not ours to use here. A packet that is not XML is reduced to its length.
 */
export function maskFrame(frame: Uint8Array): MaskedFrame {
  let root: XmlElement;
  try {
    root = parseXmlBytes(frame);
  } catch {
    return { summary: 'undecodable packet', masked: `<${frame.length} bytes, not decoded>` };
  }
  if (isSealed(root)) {
    const attrs = Object.keys(root.attrs).map((name) => ` ${name}="${REDACTED}"`);
    return { summary: `${root.name} (encrypted)`, masked: `<${root.name}${attrs.join('')}><encrypted>[${frame.length} bytes]</encrypted></${root.name}>` };
  }
  return { summary: root.name, masked: writeXml(redact(root)) };
}

function redact(element: XmlElement): XmlElement {
  const attrs = Object.fromEntries(Object.entries(element.attrs).map(([name, value]) => [name, SECRET_NAME.test(name) ? REDACTED : value]));
  if (SECRET_NAME.test(element.name)) return { name: element.name, attrs, children: [], text: REDACTED };
  if (PAN_NAME.test(element.name)) return { name: element.name, attrs, children: [], text: maskPan(element.text.trim()) };
  if (element.name === 'tag' && element.attrs.name !== undefined) {
    const value = element.attrs.value;
    const [tag] = redactEmvTags([{ name: element.attrs.name, value: value ?? '' }]);
    return { ...element, attrs: value === undefined ? attrs : { ...attrs, value: tag!.value }, children: element.children.map(redact) };
  }
  return { ...element, attrs, children: element.children.map(redact) };
}
