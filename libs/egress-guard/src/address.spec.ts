import fc from 'fast-check';

import { classifyAddress, formatAddress, parseAddressLiteral, parseCidr } from './address';

const cls = (spelling: string) => {
  const address = parseAddressLiteral(spelling);
  if (!address) throw new Error(`not a literal: ${spelling}`);
  return classifyAddress(address);
};

describe('parseAddressLiteral', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['017700000001', '127.0.0.1'],
    ['[::ffff:7f00:1]', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['[::1]', '::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['[fe80::1%25eth0]', 'fe80::1'],
    ['0', '0.0.0.0'],
    ['169.254.169.254', '169.254.169.254'],
    ['0xa9.0xfe.0xa9.0xfe', '169.254.169.254'],
    ['2852039166', '169.254.169.254'],
    ['FD00:EC2::254', 'fd00:ec2::254'],
  ])('%s is %s', (spelling, canonical) => {
    expect(formatAddress(parseAddressLiteral(spelling)!)).toBe(canonical);
  });

  it.each(['localhost', 'localhost.', 'example.com', '', '1.2.3.4.5', '08.1.1.1', 'fe80::zz'])('%s is not a literal', (value) => {
    expect(parseAddressLiteral(value)).toBeNull();
  });

  it('every numeric spelling of an IPv4 address is that address (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        const quad = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
        const spellings = [
          String(n),
          `0x${n.toString(16)}`,
          `0${n.toString(8)}`,
          [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => `0x${b.toString(16)}`).join('.'),
          `[::ffff:${quad}]`,
        ];
        for (const s of spellings) {
          const parsed = parseAddressLiteral(s);
          expect(parsed && formatAddress(parsed)).toBe(quad);
          expect(classifyAddress(parsed!)).toBe(classifyAddress(parseAddressLiteral(quad)!));
        }
      }),
    );
  });
});

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'this_network'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'carrier_grade_nat'],
    ['169.254.169.254', 'link_local'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['198.18.0.1', 'benchmarking'],
    ['192.0.2.1', 'documentation'],
    ['192.0.0.170', 'protocol_assignments'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::7f00:1', 'ipv4_compatible'],
    ['64:ff9b::7f00:1', 'nat64'],
    ['64:ff9b::808:808', 'nat64'],
    ['fd00:ec2::254', 'unique_local'],
    ['fc00::1', 'unique_local'],
    ['fe80::1', 'link_local'],
    ['fec0::1', 'site_local'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['100::1', 'discard'],
    ['3fff::1', 'documentation'],
    ['3fff:fff:ffff::1', 'documentation'],
    ['3fff:1000::1', null],
    ['4000::1', 'not_global_unicast'],
    // 6to4 and Teredo are judged by the IPv4 address they carry.
    ['2002:7f00:1::', 'loopback'],
    ['2002:a9fe:a9fe::1', 'link_local'],
    ['2002:0808:0808::1', null],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback'], // Teredo client 127.0.0.1 (obfuscated)
    ['8.8.8.8', null],
    ['172.32.0.1', null],
    ['2606:4700::1111', null],
  ])('%s → %s', (spelling, category) => {
    expect(cls(spelling)).toBe(category);
  });
});

describe('parseCidr', () => {
  it('normalises to the network address', () => {
    expect(parseCidr('10.1.2.3/8')!.text).toBe('10.0.0.0/8');
    expect(parseCidr('127.1')!.text).toBe('127.0.0.1/32');
    expect(parseCidr('::ffff:127.0.0.0/104')!.text).toBe('127.0.0.0/8');
    expect(parseCidr('FD00::/8')!.text).toBe('fd00::/8');
    expect(parseCidr('nonsense')).toBeNull();
    expect(parseCidr('10.0.0.0/33')).toBeNull();
  });
});
