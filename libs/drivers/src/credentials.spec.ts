import { randomBytes } from 'node:crypto';

import { SecretBox, SecretError } from '@payorch/domain';

import { openTerminalCredentials, sealTerminalCredentials, terminalCredentialsAad } from './credentials';

describe(sealTerminalCredentials.name, () => {
  const box = SecretBox.fromConfig(`k1:${randomBytes(32).toString('base64')}`);

  it('seals with the label every reader uses, and opens back to the driver credentials', () => {
    const envelope = sealTerminalCredentials(box, 'tenant-a', 'terminal-1', { adminPassword: 's3cret' });
    expect(envelope).not.toContain('s3cret');
    expect(box.decrypt(envelope, 'terminal:tenant-a:terminal-1:credentials')).toBe('{"adminPassword":"s3cret"}');
    expect(terminalCredentialsAad('tenant-a', 'terminal-1')).toBe('terminal:tenant-a:terminal-1:credentials');
    expect(openTerminalCredentials(box, 'tenant-a', 'terminal-1', envelope)).toEqual({ adminPassword: 's3cret' });
  });

  it('refuses an envelope copied to another terminal or tenant', () => {
    const envelope = sealTerminalCredentials(box, 'tenant-a', 'terminal-1', { adminPassword: 's3cret' });
    expect(() => openTerminalCredentials(box, 'tenant-a', 'terminal-2', envelope)).toThrow(SecretError);
    expect(() => openTerminalCredentials(box, 'tenant-b', 'terminal-1', envelope)).toThrow(SecretError);
  });
});
