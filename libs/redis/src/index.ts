/**
 * @payorch/redis: the named Redis connections of a process (at most one `command`, `bull`,
 * `blocking` and `subscriber` connection) and the Nest module that provides them.
 */
export { REDIS_CONNECTION_DEFAULTS, REDIS_CONNECTION_NAMES, type RedisConnectionName, RedisConnections, type RedisConnectionsOptions } from './connections';
export { InjectRedis, RedisModule, redisToken } from './redis.module';
