/**
 * Masks a PAN to first 6 / last 4 (spec 1.2.1 «маскирование PAN»; PCI DSS 3.4). Idempotent on a masked PAN,
 * and applied to every DF04 we decode, so a terminal that sends a full PAN never leaks it further.
 */
export function maskPan(pan: string): string {
  if (pan.length <= 10) return '*'.repeat(pan.length);
  return pan.slice(0, 6) + '*'.repeat(pan.length - 10) + pan.slice(-4);
}
