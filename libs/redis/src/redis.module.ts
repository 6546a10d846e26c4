import { type DynamicModule, Inject, Injectable, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';

import { type RedisConnectionName, RedisConnections } from './connections';

/** DI token of a named connection (an ioredis `Redis`). */
export const redisToken = (name: RedisConnectionName): string => `payorch:redis:${name}`;

/** `@InjectRedis('command') private readonly redis: Redis` */
export const InjectRedis = (name: RedisConnectionName): PropertyDecorator & ParameterDecorator => Inject(redisToken(name));

@Injectable()
class RedisConnectionsLifecycle implements OnModuleInit, OnApplicationShutdown {
  constructor(private readonly connections: RedisConnections) {}

  /** The app starts on connections that are up, or that failed once (then it starts degraded and reconnects). */
  onModuleInit(): Promise<void> {
    return this.connections.settled();
  }

  onApplicationShutdown(): Promise<void> {
    return this.connections.close();
  }
}

/**
 * Provides the process's named Redis connections (RedisConnections) to every module, by name:
 * `redisToken(name)` / `@InjectRedis(name)`; `BullModule.forRootAsync` and the throttler storage
 * inject them like any provider. Global. Import it **first** in the root module: Nest runs the
 * shutdown hooks of global modules in reverse order of registration, so the connections are closed
 * after every module that still uses them (BullMQ workers finishing their jobs, the command bus).
 */
@Module({})
export class RedisModule {
  static forRoot(connections: RedisConnections): DynamicModule {
    const named = connections.names.map((name) => ({ provide: redisToken(name), useFactory: () => connections.get(name) }));
    return {
      global: true,
      module: RedisModule,
      providers: [{ provide: RedisConnections, useValue: connections }, ...named, RedisConnectionsLifecycle],
      exports: [RedisConnections, ...named.map((provider) => provider.provide)],
    };
  }
}
