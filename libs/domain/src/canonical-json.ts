const CLOSE_ARRAY = { text: ']' };
const CLOSE_OBJECT = { text: '}' };
const COMMA = { text: ',' };

/**
 * JSON with object keys sorted, for request hashes: key order does not matter. Iterative (an explicit
 * work stack, no recursion), so any body — 200 KB of nested `[` included — is hashed without
 * overflowing the call stack. Same output as the recursive form it replaced, so stored hashes still match.
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  // A work item is a value still to write, or a fixed piece of text ({ text }).
  const stack: { value?: unknown; text?: string }[] = [{ value }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (item.text !== undefined) {
      out.push(item.text);
      continue;
    }
    const v = item.value;
    if (Array.isArray(v)) {
      out.push('[');
      stack.push(CLOSE_ARRAY);
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push({ value: v[i] });
        if (i > 0) stack.push(COMMA);
      }
    } else if (v && typeof v === 'object') {
      out.push('{');
      stack.push(CLOSE_OBJECT);
      const keys = Object.keys(v).sort();
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ value: (v as Record<string, unknown>)[keys[i]!] });
        stack.push({ text: `${JSON.stringify(keys[i])}:` });
        if (i > 0) stack.push(COMMA);
      }
    } else {
      out.push(JSON.stringify(v ?? null));
    }
  }
  return out.join('');
}
