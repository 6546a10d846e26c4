import type { SecretBox } from '@payorch/domain';

/**
 * Binds a terminal's credential ciphertext (Terminal.credentialsEncrypted) to its tenant and row (envelope
 * AAD): the gateway seals, the device connector opens, the admin CLI rewraps, all with this one label.
 */
export const terminalCredentialsAad = (tenantId: string, terminalId: string): string => `terminal:${tenantId}:${terminalId}:credentials`;

export function sealTerminalCredentials(box: SecretBox, tenantId: string, terminalId: string, credentials: object): string {
  return box.encrypt(JSON.stringify(credentials), terminalCredentialsAad(tenantId, terminalId));
}

/** The driver's `credentials` (e.g. `adminPassword`). @throws SecretError when the envelope is not this row's. */
export function openTerminalCredentials(box: SecretBox, tenantId: string, terminalId: string, envelope: string): Record<string, string> {
  return JSON.parse(box.decrypt(envelope, terminalCredentialsAad(tenantId, terminalId))) as Record<string, string>;
}
