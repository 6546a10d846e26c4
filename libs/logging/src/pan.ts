/**
 * Card-number hygiene. A full PAN must never reach a log line or the database:
 * keep at most the first 6 and last 4 digits (PCI DSS 3.4).
 */

/** Luhn check over a digit string. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** A 16-digit PAN becomes its first six digits, six stars and its last four. Shorter input is fully masked. */
export function maskPan(pan: string): string {
  const digits = pan.replace(/[\s-]/g, '');
  if (digits.length < 13) return digits.replace(/\d/g, '*');
  return digits.slice(0, 6) + '*'.repeat(digits.length - 10) + digits.slice(-4);
}

const CANDIDATE = /(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])/g;

/** Replaces every Luhn-valid 13–19 digit run (optionally spaced or dashed) in free text by its masked form. */
export function scrubPans(text: string): string {
  return text.replace(CANDIDATE, (match) => {
    const digits = match.replace(/[ -]/g, '');
    return digits.length >= 13 && digits.length <= 19 && luhnValid(digits) ? maskPan(digits) : match;
  });
}
