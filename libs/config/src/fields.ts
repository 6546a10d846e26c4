import { parseCidr } from '@payorch/egress-guard';

import { z } from 'zod';

/** Shared field builders so every app spells its variables and defaults the same way. */

export const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

export const postgresUrl = () => z.string().refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgresql:// URL');

/** `redis-cluster://[user:password@]host:port[,host:port…]` (`rediss-cluster://` with TLS); kept equal to @payorch/redis REDIS_CLUSTER_URL. */
const REDIS_CLUSTER_URL = /^(rediss?)-cluster:\/\/(?:([^@/]*)@)?([^@/,\s]+:\d{1,5}(?:,[^@/,\s]+:\d{1,5})*)\/?$/;

/** One Redis (`redis://`, `rediss://`) or a Redis Cluster by some of its nodes (`redis-cluster://h1:p1,h2:p2`). */
export const isRedisUrl = (v: string): boolean => /^rediss?:\/\//.test(v) || REDIS_CLUSTER_URL.test(v);

export const redisUrl = () =>
  z
    .string()
    .refine(isRedisUrl, 'must be a redis:// or rediss:// URL, or redis-cluster://host:port[,host:port…] for a Redis Cluster')
    .default('redis://127.0.0.1:6379');

export const logLevel = () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');

/** `true/false/1/0/yes/no`, because z.coerce.boolean() turns "false" into true. */
export const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** `<keyId>:<base64 of 32 bytes>`; see libs/domain/src/secrets. */
const KEY_PATTERN = /^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=$/;
export const masterKey = () => z.string().regex(KEY_PATTERN, 'must be "<keyId>:<base64 of 32 random bytes>" (openssl rand -base64 32)');
export const previousMasterKeys = () =>
  z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(KEY_PATTERN, 'each entry must be "<keyId>:<base64 of 32 bytes>"')));

/** Comma/space separated CIDRs or addresses, each checked by the egress guard's parser. */
export const cidrList = () =>
  z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(/[\s,]+/)
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().refine((entry) => parseCidr(entry) !== null, 'each entry must be a CIDR (10.20.0.0/16) or an IP address')));
