/**
 * @payorch/command-bus: Redis routing of TerminalCommands from any gateway / worker instance to the
 * device-connector instance that holds the terminal's agent (docs/tunnel.md, "Command bus").
 */
export { AgentOwnership, type AgentOwnershipOptions } from './ownership';
export { CommandConsumer, type CommandConsumerOptions, type CommandConsumerStatus, type TerminalCommandHandler } from './consumer';
export {
  type AgentResolver,
  databaseAgentResolver,
  DEFAULT_COMMAND_TIMEOUTS_MS,
  DEFAULT_QUEUED_REPLY_TIMEOUT_MS,
  RedisTerminalCommandDispatcher,
  type RedisDispatcherOptions,
  type TerminalCommandDispatcher,
} from './dispatcher';
export { busKeys, CONSUMER_GROUP } from './keys';
export { parseCommand } from './messages';
export { isRedisUnavailable } from './unavailable';
export { CommandBusModule, type CommandBusModuleOptions } from './command-bus.module';
