import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { HostsFile, parseHostsFile } from './hosts-file';

describe('parseHostsFile', () => {
  it('maps every name and alias of a line to its addresses, IPv4 first, skipping comments and lines without an IP address', () => {
    const names = parseHostsFile(
      [
        '# comment line',
        '127.0.0.1 localhost',
        '::1 localhost ip6-localhost # trailing comment',
        '10.20.0.5\tProcessing.Chain-A.example.  proc',
        'not-an-address some.name',
        '10.20.0.6',
        '10.20.0.5 proc',
      ].join('\n'),
    );
    expect(names.get('localhost')).toEqual(['127.0.0.1', '::1']);
    expect(names.get('ip6-localhost')).toEqual(['::1']);
    expect(names.get('processing.chain-a.example')).toEqual(['10.20.0.5']);
    expect(names.get('proc')).toEqual(['10.20.0.5']);
    expect(names.has('some.name')).toBe(false);
    expect(names.has('not-an-address')).toBe(false);
  });
});

describe('HostsFile', () => {
  const file = (text: string) => {
    const p = path.join(mkdtempSync(path.join(tmpdir(), 'payorch-hosts-')), 'hosts');
    writeFileSync(p, text);
    return p;
  };

  it('answers a name of the file (case and trailing dot ignored) and refuses one it does not list with ENOTFOUND', async () => {
    const hosts = new HostsFile({ path: file('127.0.0.9 printer.shop.test\n') });
    await expect(hosts.lookup('Printer.Shop.Test.')).resolves.toEqual([{ address: '127.0.0.9', family: 4 }]);
    await expect(hosts.lookup('other.shop.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('reads the file again once its last read is older than refreshMs, and knows no names when it cannot be read', async () => {
    const p = file('127.0.0.9 a.test\n');
    const hosts = new HostsFile({ path: p, refreshMs: 0 });
    await expect(hosts.lookup('a.test')).resolves.toHaveLength(1);
    writeFileSync(p, '127.0.0.10 b.test\n');
    await expect(hosts.lookup('b.test')).resolves.toEqual([{ address: '127.0.0.10', family: 4 }]);
    await expect(hosts.lookup('a.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    const missing = new HostsFile({ path: path.join(tmpdir(), 'payorch-no-such-dir', 'hosts') });
    await expect(missing.lookup('a.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('keeps a read for refreshMs: a change is seen only after it', async () => {
    const p = file('127.0.0.9 a.test\n');
    const hosts = new HostsFile({ path: p, refreshMs: 60_000 });
    await hosts.lookup('a.test');
    writeFileSync(p, '127.0.0.10 b.test\n');
    await expect(hosts.lookup('a.test')).resolves.toEqual([{ address: '127.0.0.9', family: 4 }]);
  });
});
