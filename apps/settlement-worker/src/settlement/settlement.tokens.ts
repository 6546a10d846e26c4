export const TENANT_SLOTS = Symbol('TENANT_SLOTS');
