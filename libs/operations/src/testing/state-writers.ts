import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * TEST TOOL for `architecture.spec.ts`: finds writes of the owned states outside their owners, by
 * reading the source (no type information, so it errs on the side of reporting):
 *  - Prisma `create` / `createMany` / `createManyAndReturn` / `upsert` of terminalOperation, walletPayment or
 *    settlement (and the campaign tables): creating a row sets its first state (a column default counts);
 *  - Prisma `update` / `updateMany` / `updateManyAndReturn` whose data sets the state column (`state`; `status`
 *    for settlement) or a column only written with it (a wallet payment's or wallet operation's `resolution`: a
 *    person's verdict), spreads something in (a helper may carry the state), or is not an object literal;
 *  - raw SQL `UPDATE "TerminalOperation" … SET … "state" =` (same for the other two tables) and `INSERT INTO` them.
 */

export interface StateWriter {
  /** Path relative to the scanned root, with forward slashes. */
  file: string;
  line: number;
  what: string;
}

interface OwnedModel {
  accessor: string;
  table: string;
  /** The state column, first; then columns written only with a state change (a person's verdict). */
  columns: readonly string[];
}

export const OWNED_MODELS: readonly OwnedModel[] = [
  { accessor: 'terminalOperation', table: 'TerminalOperation', columns: ['state', 'sentAt'] },
  { accessor: 'walletPayment', table: 'WalletPayment', columns: ['state', 'resolution'] },
  { accessor: 'walletPaymentOperation', table: 'WalletPaymentOperation', columns: ['state', 'resolution'] },
  { accessor: 'settlement', table: 'Settlement', columns: ['status'] },
  { accessor: 'campaign', table: 'Campaign', columns: ['state'] },
  { accessor: 'campaignWave', table: 'CampaignWave', columns: ['state'] },
  { accessor: 'campaignTarget', table: 'CampaignTarget', columns: ['state'] },
];

/** The only files allowed to write those states. */
export const STATE_OWNERS: Readonly<Record<string, readonly string[]>> = {
  TerminalOperation: ['libs/operations/src/transition.ts', 'libs/operations/src/create.ts'],
  WalletPayment: ['libs/wallet-payments/src/transition.ts'],
  WalletPaymentOperation: ['libs/wallet-payments/src/transition.ts'],
  Settlement: ['libs/settlement/src/transition.ts'],
  Campaign: ['libs/campaigns/src/transition.ts'],
  CampaignWave: ['libs/campaigns/src/transition.ts'],
  CampaignTarget: ['libs/campaigns/src/transition.ts'],
};

/**
 * Tests, and the test harnesses they share (`*.testing.ts`, never imported by production code: the architecture spec's
 * other check), plant rows in any state as a test does.
 */
const TEST_FILE = /\.(spec|int-spec|e2e-spec|fault-spec|security-spec|property\.spec|property\.int-spec|testing)\.ts$/;

/** Every non-test `.ts` file under `dirs` (relative to `root`). */
export function sourceFiles(root: string, dirs: readonly string[] = ['apps', 'libs']): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'dist' && !entry.name.startsWith('.')) walk(rel);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') && !TEST_FILE.test(entry.name)) {
        out.push(rel);
      }
    }
  };
  for (const dir of dirs) walk(dir);
  return out.sort();
}

export function findStateWriters(root: string, dirs?: readonly string[]): StateWriter[] {
  return sourceFiles(root, dirs).flatMap((file) => stateWritesIn(file, readFileSync(path.join(root, file), 'utf8')));
}

/** The state writes in one file's text that its path does not own. */
export function stateWritesIn(file: string, text: string): StateWriter[] {
  const found: StateWriter[] = [];
  const lineOf = (index: number) => text.slice(0, index).split('\n').length;
  for (const model of OWNED_MODELS) {
    if (STATE_OWNERS[model.table]!.includes(file)) continue;
    const call = new RegExp(`\\.${model.accessor}\\s*\\.\\s*(create|createMany|createManyAndReturn|upsert|update|updateMany|updateManyAndReturn)\\s*\\(`, 'g');
    for (const match of text.matchAll(call)) {
      const method = match[1]!;
      const args = balanced(text, match.index! + match[0].length - 1);
      if (method.startsWith('create') || method === 'upsert') {
        found.push({ file, line: lineOf(match.index!), what: `prisma ${model.accessor}.${method} (creates a row, and so its ${model.columns[0]})` });
        continue;
      }
      const data = valueOfKey(args, 'data');
      if (data === undefined) continue;
      const set = model.columns.find((column) => new RegExp(`(^|[{,\\s])${column}\\s*:`).test(data) || new RegExp(`(^|[{,\\s])${column}\\s*[,}]`).test(data));
      const reason = !data.startsWith('{')
        ? 'data is not an object literal'
        : set !== undefined
          ? `sets ${set}`
          : data.includes('...')
            ? 'spreads into data (may carry the state)'
            : undefined;
      if (reason !== undefined) found.push({ file, line: lineOf(match.index!), what: `prisma ${model.accessor}.${method}: ${reason}` });
    }
    const update = new RegExp(
      `UPDATE\\s+(?:"public"\\.)?"?${model.table}"?(?:\\s+(?:AS\\s+)?[a-z_]\\w*)?\\s+SET\\s+([\\s\\S]*?)(?=\\bWHERE\\b|\\bFROM\\b|\\bRETURNING\\b|\`|$)`,
      'gi',
    );
    for (const match of text.matchAll(update)) {
      const set = model.columns.find((column) => new RegExp(`(^|[\\s,.])"?${column}"?\\s*=`, 'i').test(match[1]!));
      if (set !== undefined) found.push({ file, line: lineOf(match.index!), what: `raw SQL UPDATE "${model.table}" SET ${set}` });
    }
    const insert = new RegExp(`INSERT\\s+INTO\\s+(?:"public"\\.)?"?${model.table}"?[\\s(]`, 'gi');
    for (const match of text.matchAll(insert)) {
      found.push({ file, line: lineOf(match.index!), what: `raw SQL INSERT INTO "${model.table}"` });
    }
  }
  return found;
}

/** Relative imports of test support (`testing/` folders, `*.testing` modules) from a file outside them. */
export function testSupportImports(root: string, dirs?: readonly string[]): StateWriter[] {
  const found: StateWriter[] = [];
  for (const file of sourceFiles(root, dirs)) {
    if (file.split('/').includes('testing') || file.endsWith('.testing.ts')) continue;
    const text = readFileSync(path.join(root, file), 'utf8');
    for (const match of text.matchAll(/from\s+'(\.[^']*)'/g)) {
      const spec = match[1]!;
      if (spec.split('/').includes('testing') || spec.endsWith('.testing')) {
        found.push({ file, line: text.slice(0, match.index).split('\n').length, what: `imports test support ${spec}` });
      }
    }
  }
  return found;
}

/** The text inside the parentheses that open at `open`. */
function balanced(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '(' || c === '{' || c === '[') depth++;
    else if (c === ')' || c === '}' || c === ']') {
      depth--;
      if (depth === 0) return text.slice(open + 1, i);
    } else if (c === "'" || c === '"' || c === '`') {
      i = skipString(text, i);
    }
  }
  return text.slice(open + 1);
}

function skipString(text: string, start: number): number {
  const quote = text[start];
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === quote) return i;
  }
  return text.length;
}

/** The source text of `key`'s value in an object literal's text (top level only), or undefined. */
function valueOfKey(objectText: string, key: string): string | undefined {
  let depth = 0;
  for (let i = 0; i < objectText.length; i++) {
    const c = objectText[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i = skipString(objectText, i);
      continue;
    }
    if (c === '(' || c === '{' || c === '[') depth++;
    else if (c === ')' || c === '}' || c === ']') depth--;
    else if (depth === 1 && objectText.startsWith(key, i) && /[\s{,]/.test(objectText[i - 1] ?? ' ')) {
      const rest = objectText.slice(i + key.length).match(/^\s*:\s*/);
      if (!rest) continue;
      const start = i + key.length + rest[0].length;
      let d = 0;
      for (let j = start; j < objectText.length; j++) {
        const ch = objectText[j]!;
        if (ch === "'" || ch === '"' || ch === '`') j = skipString(objectText, j);
        else if (ch === '(' || ch === '{' || ch === '[') d++;
        else if (ch === ')' || ch === '}' || ch === ']') {
          if (d === 0) return objectText.slice(start, j).trim();
          d--;
        } else if (ch === ',' && d === 0) return objectText.slice(start, j).trim();
      }
      return objectText.slice(start).trim();
    }
  }
  return undefined;
}
