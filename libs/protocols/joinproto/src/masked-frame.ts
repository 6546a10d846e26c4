import { commandByCode } from './commands';
import { maskPan } from './pan';
import { TAGS } from './tags';
import { decodeTlvs } from './tlv';

/** A frame as an operation journal may keep it: what it is, and its content with card data masked. */
export interface MaskedFrame {
  /** The command name and code, e.g. `Purchase (01)`. */
  readonly summary: string;
  /** `TAG=value` per TLV, card data masked, opaque data reduced to its length. */
  readonly masked: string;
}

/**
 * Tags whose value is never shown, only its length: DF0A (receipt: free-form, may print a card number the
 * terminal did not mask) and DF24 (relay chunks: the host messages of the processing centre, which carry
 * track data and PIN blocks, and log uploads).
 */
const OPAQUE_TAGS = new Set(['DF0A', 'DF24']);

/**
 * Log-safe rendering of one frame (the TLV payload `FrameDecoder` yields, STX/ETX/LRC stripped) for an
 * operation's timeline. DF04 is masked first 6 / last 4 (as `decodeMessage` does), DF0A and DF24 and tags
 * outside the spec's table are shown as their length only, every other tag of the table is printable by its
 * format (`n`, `an`, `ans`). A frame whose TLVs do not parse is reduced to its length.
 */
export function maskFrame(frame: Uint8Array): MaskedFrame {
  let tlvs;
  try {
    tlvs = decodeTlvs(frame);
  } catch {
    return { summary: 'undecodable frame', masked: `<${frame.length} bytes, not decoded>` };
  }
  const fields = tlvs.map(({ tag, value }) => {
    const spec = TAGS[tag];
    if (spec === undefined || spec.format === 'b' || OPAQUE_TAGS.has(tag)) return `${tag}=<${value.length} bytes>`;
    const text = Buffer.from(value).toString('latin1');
    return `${tag}=${tag === 'DF04' ? maskPan(text) : text}`;
  });
  const code = tlvs.find((tlv) => tlv.tag === 'DF00');
  const codeText = code === undefined ? undefined : Buffer.from(code.value).toString('latin1');
  const name = codeText === undefined ? undefined : commandByCode(codeText);
  const summary = codeText === undefined ? 'frame without DF00' : `${name ?? 'unknown command'} (${codeText})`;
  return { summary, masked: fields.join(' ') };
}
