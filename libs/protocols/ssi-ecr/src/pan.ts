/**
 * PANs never leave the library unmasked: first 6 and last 4 digits stay, everything between becomes
 * `*`. Already-masked input (`4725XXXXXXXX1627`, `4143********9008`) is re-masked the same way.
 */
export function maskPan(pan: string): string {
  const compact = pan.replace(/\s/g, '');
  if (compact.length <= 10) return '*'.repeat(Math.max(0, compact.length - 4)) + compact.slice(-4);
  return compact.slice(0, 6) + '*'.repeat(compact.length - 10) + compact.slice(-4);
}
