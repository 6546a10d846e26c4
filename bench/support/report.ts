/**
 * How a bench hands its figures to `npm run bench` (bench/run.ts): each result row is printed on its
 * own stdout line as `BENCH-ROW <json>`; the runner collects them into one table and bench/results.json.
 * A bench stays runnable on its own (`node scripts/run-ts.mjs bench/x/y.bench.ts`): the row line is
 * printed after the bench's human-readable lines.
 *
 * A row compares a measured figure with a baseline measured in the same run (never an absolute time),
 * and names its goal (bench/README.md, issue 19's table). `perEvent` carries SQL statements and
 * transactions per business event where the bench can count them (bench/support/sql-counter.ts).
 */

/** `--quick` (CI): small counts, a few seconds per bench. Set by the runner in BENCH_QUICK. */
export const QUICK = process.env.BENCH_QUICK === '1' || process.argv.includes('--quick');

export const ROW_PREFIX = 'BENCH-ROW ';

export interface Goal {
  /** Which figure the goal is about: the ratio measured/baseline, or the measured figure itself. */
  readonly on: 'ratio' | 'measured';
  readonly op: '>=' | '<=';
  readonly value: number;
}

export interface BenchRow {
  /** What was measured, e.g. `jpay: framer + XML + typed decode`. */
  readonly bench: string;
  readonly measured: number;
  readonly baseline: number;
  /** Unit of measured/baseline, e.g. `packets/s`, `ms p50`. */
  readonly unit: string;
  readonly ratio: number;
  /** Undefined: no goal in the table (informational row). */
  readonly goal?: Goal;
  readonly met?: boolean;
  readonly perEvent?: { readonly statements: number; readonly transactions: number };
  /** One line the profile taught (where the time goes), kept next to the figure. */
  readonly note?: string;
}

export function goalText(goal: Goal | undefined): string {
  if (!goal) return '—';
  return `${goal.on === 'ratio' ? 'ratio' : 'value'} ${goal.op === '>=' ? '≥' : '≤'} ${goal.value}`;
}

export function meets(goal: Goal, measured: number, ratio: number): boolean {
  const figure = goal.on === 'ratio' ? ratio : measured;
  return goal.op === '>=' ? figure >= goal.value : figure <= goal.value;
}

/** Prints one result row for the runner (and a readable summary line for a human running the bench alone). */
export function reportRow(row: Omit<BenchRow, 'met'>): void {
  const met = row.goal ? meets(row.goal, row.measured, row.ratio) : undefined;
  const full: BenchRow = { ...row, met };
  const verdict = met === undefined ? '' : met ? '  goal met' : '  goal NOT met';
  console.log(`→ ${row.bench}: ratio ${row.ratio.toFixed(3)} (${goalText(row.goal)})${verdict}`);
  console.log(`${ROW_PREFIX}${JSON.stringify(full)}`);
}
