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
    } else if (verb.startsWith('COMMIT') || (verb.startsWith('ROLLBACK') && !verb.startsWith('ROLLBACK T'))) {
      inTransaction.delete(this);
    } else if (!verb.startsWith('SAVEPOIN') && !verb.startsWith('RELEASE') && !verb.startsWith('ROLLBACK')) {
      counts.statements += 1;
      if (!inTransaction.has(this)) counts.transactions += 1;
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
