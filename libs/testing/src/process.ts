import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');

/** Node arguments that run a TypeScript entry in one process (no wrapper), so a test can kill it directly. */
export function tsEntryArgs(entry: string, ...args: string[]): string[] {
  return ['-r', require.resolve('@swc-node/register'), path.resolve(ROOT, entry), ...args];
}

export const REPO_ROOT = ROOT;
