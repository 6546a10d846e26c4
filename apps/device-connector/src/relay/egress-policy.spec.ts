import { checkEgress } from './egress-policy';

const rule = (r: Partial<{ host: string; cidr: string }> & { port: number }) => ({ host: r.host ?? null, cidr: r.cidr ?? null, port: r.port });

describe(checkEgress.name, () => {
  it('allows a host rule for a public address, on its port only', () => {
    const rules = [rule({ host: 'proc.example.com', port: 443 })];
    expect(checkEgress(rules, 'PROC.example.com', 443, '8.8.8.8')).toMatchObject({ allowed: true });
    expect(checkEgress(rules, 'proc.example.com', 444, '8.8.8.8')).toEqual({ allowed: false, reason: 'no egress rule for port 444' });
    expect(checkEgress(rules, 'evil.example.com', 443, '8.8.8.8')).toMatchObject({ allowed: false });
  });

  it('matches wildcard sub-domains but not the apex', () => {
    const rules = [rule({ host: '*.example.com', port: 443 })];
    expect(checkEgress(rules, 'a.b.example.com', 443, '1.1.1.1').allowed).toBe(true);
    expect(checkEgress(rules, 'example.com', 443, '1.1.1.1').allowed).toBe(false);
    expect(checkEgress(rules, 'badexample.com', 443, '1.1.1.1').allowed).toBe(false);
  });

  it('denies loopback, private, link-local and mapped addresses reached through a name', () => {
    const rules = [rule({ host: 'proc.example.com', port: 443 })];
    for (const address of ['127.0.0.1', '10.1.2.3', '192.168.0.5', '169.254.169.254', '::1', 'fe80::1', '::ffff:127.0.0.1', '100.64.0.1', '0.0.0.0']) {
      const decision = checkEgress(rules, 'proc.example.com', 443, address);
      expect(decision.allowed).toBe(false);
    }
  });

  it('allows an internal address only when a rule names it (IP host or CIDR)', () => {
    expect(checkEgress([rule({ cidr: '10.0.0.0/8', port: 7000 })], 'proc.lan', 7000, '10.9.9.9').allowed).toBe(true);
    expect(checkEgress([rule({ host: '10.9.9.9', port: 7000 })], '10.9.9.9', 7000, '10.9.9.9').allowed).toBe(true);
    expect(checkEgress([rule({ host: 'proc.lan', port: 7000 }), rule({ cidr: '10.0.0.0/24', port: 7000 })], 'proc.lan', 7000, '10.9.9.9').allowed).toBe(false);
    expect(checkEgress([rule({ cidr: '10.0.0.0/8', port: 7001 })], 'proc.lan', 7000, '10.9.9.9').allowed).toBe(false);
  });

  it('compares IPv4 with IPv4 CIDRs only and never throws on junk', () => {
    expect(checkEgress([rule({ cidr: '2001:db8::/32', port: 1 })], '203.0.113.1', 1, '203.0.113.1').allowed).toBe(false);
    expect(checkEgress([rule({ cidr: 'nonsense', port: 1 })], 'x', 1, '203.0.113.1').allowed).toBe(false);
    expect(checkEgress([rule({ host: 'x', port: 1 })], 'x', 1, 'not-an-ip')).toEqual({ allowed: false, reason: 'unusable resolved address not-an-ip' });
  });
});
