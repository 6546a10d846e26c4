/**
 * CPU time of the PostgreSQL server processes that serve one database (its backends), read from /proc: on a
 * 2-core machine the server's share decides throughput as much as the app's. Only when PostgreSQL runs on this
 * host (Linux); otherwise `undefined`, and benches print no figure. Backends opened during the measured phase count
 * from zero; one that exits during it is lost (the benches' pools keep theirs).
 *
 * Lesson kept here (operations bench, pg_stat_statements): planning the hot statements cost the server about as
 * much as running them, until they were prepared once per connection (libs/db prepared-statements.ts).
 */
import { readFileSync } from 'node:fs';

import pg from 'pg';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

export type BackendCpu = Map<number, number>;

/** Milliseconds of CPU (user + system) of every backend of `database` now, by pid; undefined where /proc cannot tell. */
export async function backendCpu(adminUrl: string, database: string): Promise<BackendCpu | undefined> {
  if (process.platform !== 'linux') return undefined;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
    const cpu: BackendCpu = new Map();
    for (const { pid } of rows) {
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      } catch {
        return undefined; // not on this host (or another namespace)
      }
      // Fields after the command name (which may hold spaces): state is the 3rd field, utime the 14th, stime the 15th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpu.set(pid, ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND);
    }
    return cpu;
  } finally {
    await client.end();
  }
}

/** The backends' CPU between two readings, per event (ms); undefined if either reading is. */
export function backendCpuPerEvent(before: BackendCpu | undefined, after: BackendCpu | undefined, events: number): number | undefined {
  if (before === undefined || after === undefined) return undefined;
  let used = 0;
  for (const [pid, ms] of after) used += ms - (before.get(pid) ?? 0);
  return used / Math.max(1, events);
}
