/**
 * RFC 4180 CSV. A field is quoted when it holds a comma, quote, CR or LF (quotes doubled), and a
 * leading `= + - @ TAB CR` is prefixed with `'` so a spreadsheet never evaluates a cell as a formula
 * (OWASP CSV injection) — except for plain numbers such as `-1500`.
 */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (/^[=+\-@\t\r]/.test(text) && !/^-?\d+(\.\d+)?$/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvRow(values: readonly unknown[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}
