import type { SecretBox } from '@payorch/domain';

/** Binds a terminal's credential ciphertext to its tenant and row (envelope AAD). */
export const terminalCredentialsAad = (tenantId: string, terminalId: string) =>
  `terminal:${tenantId}:${terminalId}:credentials`;

export function sealTerminalCredentials(box: SecretBox, tenantId: string, terminalId: string, credentials: object): string {
  return box.encrypt(JSON.stringify(credentials), terminalCredentialsAad(tenantId, terminalId));
}

export function openTerminalCredentials(box: SecretBox, tenantId: string, terminalId: string, envelope: string): Record<string, string> {
  return JSON.parse(box.decrypt(envelope, terminalCredentialsAad(tenantId, terminalId))) as Record<string, string>;
}
