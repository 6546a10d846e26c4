export { ConfigError, loadConfig } from './load-config';
export {
  adminConfigSchema,
  connectorConfigSchema,
  gatewayConfigSchema,
  schemasByApp,
  workerConfigSchema,
  type AdminConfig,
  type ConnectorConfig,
  type GatewayConfig,
  type WorkerConfig,
} from './schemas';
