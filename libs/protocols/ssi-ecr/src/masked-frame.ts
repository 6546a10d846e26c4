import type { RawFrame } from './framing';
import { isJsonObject, type JsonValue, parseJsonData } from './json';
import { maskPan } from './pan';

/** A frame as an operation journal may keep it: what it is, and its JSON with card data masked. */
export interface MaskedFrame {
  /** The message's method, e.g. `Purchase`, `GetStatus`. */
  readonly summary: string;
  /** The DATA JSON, redacted. */
  readonly masked: string;
}

const REDACTED = '[redacted]';

/** Keys whose value is card data other than the PAN, or a secret: track data, PIN block, CVV, expiry, cardholder, keys, passwords. */
const SECRET_KEY = /track|pin-?block|cvv|cvc|expir|holder|password|secret|token|key$/i;
/** Keys holding a PAN (`pan`, `cardPan`, …); already-masked ones are re-masked the same way. */
const PAN_KEY = /pan$/i;

/**
 * Log-safe rendering of one frame's DATA for an operation's timeline: the JSON with every `…pan` value masked
 * first 6 / last 4 (`maskPan`, as results are) and track data, PIN blocks, CVV, expiry, the cardholder's
 * name, keys and passwords replaced by `[redacted]`. DATA that is not a JSON object is reduced to its length.
 */
export function maskFrame(frame: RawFrame): MaskedFrame {
  let message;
  try {
    message = parseJsonData(frame.data);
  } catch {
    return { summary: 'undecodable frame', masked: `<${frame.data.length} bytes, not decoded>` };
  }
  const method = typeof message.method === 'string' ? message.method : 'message without method';
  return { summary: method, masked: JSON.stringify(redact(message)) };
}

function redact(value: JsonValue, key = ''): JsonValue {
  if (key !== '' && SECRET_KEY.test(key)) return REDACTED;
  if (key !== '' && PAN_KEY.test(key) && (typeof value === 'string' || typeof value === 'number')) return maskPan(String(value));
  if (Array.isArray(value)) return value.map((item) => redact(item));
  if (isJsonObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  return value;
}
