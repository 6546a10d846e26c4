export { createTestDatabase, TEST_APP_PASSWORD, testAdminUrl, type TestDatabase } from './database';
export { OwnedPostgres } from './owned-postgres';
export { freePort, OwnedRedis } from './owned-redis';
export { type ClusterNodeInfo, OwnedRedisCluster, type OwnedRedisClusterOptions, parseClusterNodes } from './owned-redis-cluster';
export { deleteRedisPrefix, redisClientNames, testRedisPrefix, testRedisUrl } from './redis';
export { HOLD_PHASES, type HoldPhase, PhaseHold } from './phase-hold';
export { REPO_ROOT, tsEntryArgs } from './process';
export { nextEvent, waitFor, type WaitForOptions, withTimeout } from './wait';
export { seededRandom } from './seeded-random';
