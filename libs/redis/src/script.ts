import { createHash } from 'node:crypto';

/** What a Lua script needs of a connection (a Redis or a Cluster client). */
export interface ScriptRunner {
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/**
 * A Lua script called by its SHA (EVALSHA): its text goes over the wire, and is compiled by Redis, only when Redis
 * does not know it yet (the first call, or after a restart, a failover or SCRIPT FLUSH: NOSCRIPT, then EVAL).
 */
export class RedisScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  run(redis: ScriptRunner, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return redis.evalsha(this.sha, keys.length, ...keys, ...args).catch((error: unknown) => {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    });
  }
}
