export const CONNECTOR_CONFIG = Symbol('CONNECTOR_CONFIG');
export const DATABASE = Symbol('DATABASE');
export const LOGGER = Symbol('LOGGER');
export const REGISTRY = Symbol('REGISTRY');
export const INSTANCE_ID = Symbol('INSTANCE_ID');
