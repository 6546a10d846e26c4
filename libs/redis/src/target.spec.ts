import { Cluster, Redis } from 'ioredis';

import { bullPrefix, createRedisClient, parseRedisTarget } from './target';

describe(parseRedisTarget.name, () => {
  it('reads a redis:// URL as one server', () => {
    expect(parseRedisTarget('redis://:pw@127.0.0.1:6379/0')).toEqual({ kind: 'standalone', url: 'redis://:pw@127.0.0.1:6379/0' });
  });

  it('reads redis-cluster:// as seed nodes with credentials for every node', () => {
    expect(parseRedisTarget('redis-cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2:7001/')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
      username: 'app',
      password: 'p@ss',
      tls: false,
    });
    expect(parseRedisTarget('rediss-cluster://:secret@r1.internal:6380')).toEqual({
      kind: 'cluster',
      nodes: [{ host: 'r1.internal', port: 6380 }],
      password: 'secret',
      tls: true,
    });
  });

  it('refuses a cluster URL without ports', () => {
    expect(() => parseRedisTarget('redis-cluster://10.0.0.1')).toThrow('a Redis Cluster URL is redis-cluster://');
  });
});

describe(createRedisClient.name, () => {
  it('builds a Cluster for redis-cluster://, with the node options under redisOptions and the offline queue on the Cluster', () => {
    const sut = createRedisClient('redis-cluster://:secret@127.0.0.1:1,127.0.0.1:2', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 2,
      connectionName: 'p:api-gateway:h:command',
    });
    expect(sut).toBeInstanceOf(Cluster);
    const cluster = sut as Cluster;
    expect(cluster.options).toMatchObject({ enableOfflineQueue: false, lazyConnect: true, maxRedirections: 20 });
    expect(cluster.options.redisOptions).toMatchObject({ maxRetriesPerRequest: 2, connectionName: 'p:api-gateway:h:command', password: 'secret' });
    expect(cluster.options.redisOptions).not.toHaveProperty('enableOfflineQueue');
    cluster.disconnect();
  });

  it('builds a Redis for redis://', () => {
    const sut = createRedisClient('redis://127.0.0.1:1', { lazyConnect: true });
    expect(sut).toBeInstanceOf(Redis);
    sut.disconnect();
  });
});

describe(bullPrefix.name, () => {
  it('keeps BullMQ under the key prefix, with one hash tag for all its keys', () => {
    expect(bullPrefix('payorch')).toBe('payorch:{bull}');
  });
});
