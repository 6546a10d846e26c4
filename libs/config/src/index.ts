export { ConfigError, loadConfig } from './load-config';
export {
  connectorConfigSchema,
  gatewayConfigSchema,
  schemasByApp,
  workerConfigSchema,
  type ConnectorConfig,
  type GatewayConfig,
  type WorkerConfig,
} from './schemas';
