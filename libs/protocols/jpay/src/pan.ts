/**
 * PAN masking. `plain-text-pan` (§9, encrypted sessions only) is masked the moment it is decoded and
 * never kept, logged or returned; manual-entry PANs appear only in the outgoing command.
 */

/** First 6 / last 4 for PAN-length input; shorter values keep only the last 4 (or nothing). */
export function maskPan(pan: string): string {
  const digits = pan.replace(/\s+/g, '');
  if (digits.length >= 13) {
    return digits.slice(0, 6) + '*'.repeat(digits.length - 10) + digits.slice(-4);
  }
  if (digits.length > 4) return '*'.repeat(digits.length - 4) + digits.slice(-4);
  return '*'.repeat(digits.length);
}
