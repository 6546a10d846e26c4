import { createRequire } from 'node:module';
import path from 'node:path';

/** True inside a Node single executable application (SEA). */
export function isSingleExecutable(): boolean {
  // node:sea exists from Node 20.12 (getBuiltinModule from 20.16); older runtimes are never a SEA build of ours.
  const sea = process.getBuiltinModule?.('node:sea') as { isSea(): boolean } | undefined;
  return sea?.isSea() ?? false;
}

/**
 * A native module (a `.node` binding per platform) cannot live inside the bundle or the single executable: it is
 * loaded from `node_modules` as usual, or, in the single executable, from `node_modules/<name>` beside the
 * executable (a SEA's own `require` only knows Node's built-in modules). Throws as `require` does when it is not
 * there; {@link nativeModuleLocation} names the place it was looked for, for the error a caller words.
 */
export function requireNative<T>(name: string): T {
  const load = isSingleExecutable() ? createRequire(path.join(path.dirname(process.execPath), 'payorch-agent.cjs')) : require;
  return load(name) as T;
}

/** Where requireNative looks for `name`, as an operator would check it. */
export function nativeModuleLocation(name: string): string {
  return isSingleExecutable() ? path.join(path.dirname(process.execPath), 'node_modules', name) : `node_modules/${name}`;
}
