import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU of this process's threads by thread (Linux /proc/self/task), in ms: `process.cpuUsage()` sums every
 * thread, and the main thread (`main`: the event loop), V8's platform workers (`V8 workers`: concurrent and parallel GC,
 * compilation) and libuv's pool (`libuv-worker`) cost differently. Empty where /proc is not readable.
 */
export type ThreadCpu = Record<string, number>;

export function threadCpu(): ThreadCpu {
  const ticks = 100; // USER_HZ: sysconf(_SC_CLK_TCK) is 100 on Linux
  const byName: ThreadCpu = {};
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return byName;
  }
  for (const task of tasks) {
    try {
      const stat = readFileSync(`/proc/self/task/${task}/stat`, 'utf8');
      // pid (comm) state ppid … utime stime: fields 14 and 15, counted after the ')' closing comm.
      const close = stat.lastIndexOf(')');
      // The main thread's id is the process id; Node leaves V8's platform workers named like it ("node").
      const comm = stat.slice(stat.indexOf('(') + 1, close).replace(/[0-9]+$/, '');
      const name = Number(task) === process.pid ? 'main' : comm === 'node' ? 'V8 workers' : comm;
      const fields = stat.slice(close + 2).split(' ');
      byName[name] = (byName[name] ?? 0) + ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
    } catch {
      // the thread ended meanwhile
    }
  }
  return byName;
}

/** CPU by thread divided by `per` (per agent, say), as "main 0.812 ms, V8 workers 0.301 ms", largest first (threads with ≥ 1 ms). */
export function threadCpuText(threads: ThreadCpu, per: number): string {
  return Object.entries(threads)
    .filter(([, ms]) => ms >= 1)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ms]) => `${name} ${(ms / per).toFixed(3)} ms`)
    .join(', ');
}
