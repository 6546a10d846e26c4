/** Reported to the connector on every connection (X-Payorch-Agent-Version). */
export const AGENT_VERSION = '0.1.0';
