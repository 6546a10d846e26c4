export type { ProtocolCliAdapter } from './adapter';
export { ADAPTERS } from './registry';
export { readInput, runCli, type CliIo } from './run';
