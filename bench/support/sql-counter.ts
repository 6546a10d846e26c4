/**
 * Counts the SQL a bench's in-process app sends through `pg` (Prisma's adapter-pg and the bare `pg`
 * paths both end in `pg.Client#query`): statements (BEGIN/COMMIT/ROLLBACK excluded) and transactions
 * (an explicit BEGIN, or a statement sent outside one: autocommit is a transaction too). Install it
 * before the app creates its pools; read a snapshot before and after the measured phase and divide by
 * the business events (operations, settlements, agents) of that phase.
 */
import pg from 'pg';

export interface SqlCounts {
  statements: number;
  transactions: number;
}

const counts: SqlCounts = { statements: 0, transactions: 0 };
/** SQL_TRACE=1: statements by text (first 120 characters, whitespace folded), to show where a count grew. */
const trace = process.env.SQL_TRACE === '1' ? new Map<string, number>() : undefined;
/** SQL_TRACE=1: transactions by their statements' shapes (first 60 characters each). */
const shapes = trace ? new Map<string, number>() : undefined;
const open = new WeakMap<object, string[]>();
const inTransaction = new WeakSet<object>();
let installed = false;

function sqlText(config: unknown): string {
  if (typeof config === 'string') return config;
  if (config && typeof config === 'object' && 'text' in config && typeof config.text === 'string') return config.text;
  return '';
}

/** Letters a transaction-control verb starts with (BEGIN, COMMIT, ROLLBACK, RELEASE, SAVEPOINT), upper and lower case. */
const CONTROL_INITIALS = new Set([...'BCRSbcrs'].map((c) => c.charCodeAt(0)));

/**
 * The first word of a statement, upper case, when it may be a transaction-control verb; '' for any other
 * statement, without copying its text (this runs for every statement of the measured phase).
 */
function controlVerb(text: string): string {
  let i = 0;
  while (i < text.length && text.charCodeAt(i) <= 32) i++;
  const first = text.charCodeAt(i);
  if (!CONTROL_INITIALS.has(first)) return '';
  // S: SAVEPOINT, not the SELECTs that most statements are.
  if ((first | 0x20) === 0x73 && (text.charCodeAt(i + 1) | 0x20) !== 0x61) return '';
  return text.slice(i, i + 12).toUpperCase();
}

/** Wraps `pg.Client.prototype.query` once per process. */
export function installSqlCounter(): void {
  if (installed) return;
  installed = true;
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function counted(this: object, ...args: unknown[]) {
    const verb = controlVerb(sqlText(args[0]));
    if (verb.startsWith('BEGIN')) {
      counts.transactions += 1;
      inTransaction.add(this);
      if (shapes) open.set(this, []);
    } else if (verb.startsWith('COMMIT') || (verb.startsWith('ROLLBACK') && !verb.startsWith('ROLLBACK T'))) {
      inTransaction.delete(this);
      const list = open.get(this);
      if (shapes && list) {
        const key = list.join(' | ');
        shapes.set(key, (shapes.get(key) ?? 0) + 1);
        open.delete(this);
      }
    } else if (!verb.startsWith('SAVEPOIN') && !verb.startsWith('RELEASE') && !verb.startsWith('ROLLBACK')) {
      counts.statements += 1;
      if (!inTransaction.has(this)) counts.transactions += 1;
      if (trace) {
        const key = `${inTransaction.has(this) ? '' : '[autocommit] '}${sqlText(args[0]).replace(/\s+/g, ' ').slice(0, 120)}`;
        trace.set(key, (trace.get(key) ?? 0) + 1);
        const list = open.get(this);
        if (list && inTransaction.has(this)) list.push(sqlText(args[0]).replace(/\s+/g, ' ').trim().slice(0, 60));
      }
    }
    return original.apply(this, args);
  } as typeof pg.Client.prototype.query;
}

export function sqlSnapshot(): SqlCounts {
  return { ...counts };
}

/** Statements and transactions per event between two snapshots. */
export function perEvent(before: SqlCounts, after: SqlCounts, events: number): SqlCounts {
  const n = Math.max(1, events);
  return {
    statements: Math.round(((after.statements - before.statements) / n) * 10) / 10,
    transactions: Math.round(((after.transactions - before.transactions) / n) * 10) / 10,
  };
}

/** With SQL_TRACE=1: the statements sent since `traceReset`, by text, most frequent first, per event. */
export function traceText(events: number): string {
  if (!trace) return '';
  const n = Math.max(1, events);
  return (
    [...trace.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([text, count]) => `  ${(count / n).toFixed(2).padStart(6)}  ${text}`)
      .join('\n') +
    '\n  transactions by shape:\n' +
    [...(shapes ?? new Map<string, number>()).entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([text, count]) => `  ${(count / n).toFixed(2).padStart(6)}  ${text}`)
      .join('\n')
  );
}

export function traceReset(): void {
  trace?.clear();
  shapes?.clear();
}
