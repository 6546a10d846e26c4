/**
 * @payorch/redis: the named Redis connections of a process (at most one `command`, `bull`,
 * `blocking` and `subscriber` connection) and the Nest module that provides them; a standalone Redis
 * or a Redis Cluster (`redis-cluster://` REDIS_URL).
 */
export { REDIS_CONNECTION_DEFAULTS, REDIS_CONNECTION_NAMES, type RedisConnectionName, RedisConnections, type RedisConnectionsOptions } from './connections';
export { InjectRedis, RedisModule, redisToken } from './redis.module';
export { RedisScript, type ScriptRunner } from './script';
export {
  bullPrefix,
  CLUSTER_DEFAULTS,
  createRedisClient,
  duplicateClient,
  parseRedisTarget,
  REDIS_CLUSTER_URL,
  type RedisClient,
  type RedisTarget,
} from './target';
