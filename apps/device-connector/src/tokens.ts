export const CONNECTOR_CONFIG = Symbol('CONNECTOR_CONFIG');
export const DATABASE = Symbol('DATABASE');
export const LOGGER = Symbol('LOGGER');
export const REGISTRY = Symbol('REGISTRY');
export const INSTANCE_ID = Symbol('INSTANCE_ID');
export const REDIS = Symbol('REDIS');
export const SECRET_BOX = Symbol('SECRET_BOX');
/** `(config: DriverConfig) => TerminalDriver`; createDriver from @payorch/drivers in production. */
export const DRIVER_FACTORY = Symbol('DRIVER_FACTORY');
/** The issue-7 OperationCommandHandler (`handle(cmd, driver)`), or null when operations are not wired. */
export const OPERATION_HANDLER = Symbol('OPERATION_HANDLER');
/** The terminals' command queue (KeyedSerialQueue, key: terminal id), shared by TerminalHub and the OperationCommandHandler. */
export const TERMINAL_QUEUE = Symbol('TERMINAL_QUEUE');
