export const WORKER_CONFIG = Symbol('WORKER_CONFIG');
export const DATABASE = Symbol('DATABASE');
export const LOGGER = Symbol('LOGGER');
export const METRICS = Symbol('METRICS');
/** The process's SecretBox (PAYORCH_MASTER_KEY): merchant and webhook secrets, and the seal of live operation views. */
export const SECRET_BOX = Symbol('SECRET_BOX');
/** How outbound deliveries (webhooks) resolve host names: the system resolver (DNS through c-ares, then the hosts file) by default; tests inject a fake one (no test resolves real names). */
export const EGRESS_RESOLVER = Symbol('EGRESS_RESOLVER');
