import { EgressPolicy } from '@payorch/egress-guard';

import { checkEgress, precheckEgress } from './egress-policy';

const rule = (r: Partial<{ host: string; cidr: string }> & { port: number }) => ({ host: r.host ?? null, cidr: r.cidr ?? null, port: r.port });
const strict = EgressPolicy.strict();
/** An operator who runs an on-premises processing network. */
const onPrem = EgressPolicy.fromList('10.0.0.0/8');

describe(checkEgress.name, () => {
  it("lets a tenant's relay reach a range the operator granted it (on the grant's port), and only through a rule naming the address", () => {
    const granted = strict.withGrants([{ cidr: '10.20.0.0/16', port: 443 }]);
    const rules = [rule({ cidr: '10.20.1.0/24', port: 443 }), rule({ host: 'proc.chain-a.test', port: 443 }), rule({ cidr: '10.20.1.0/24', port: 8443 })];
    expect(checkEgress(granted, rules, '10.20.1.7', 443, '10.20.1.7')).toMatchObject({ allowed: true });
    // Not on another port, even with a rule for it; not under the operator-wide list alone.
    expect(checkEgress(granted, rules, '10.20.1.7', 8443, '10.20.1.7')).toMatchObject({ allowed: false });
    expect(checkEgress(strict, rules, '10.20.1.7', 443, '10.20.1.7')).toMatchObject({ allowed: false });
    // A name allowed by a host rule is never rebound into the granted range.
    expect(checkEgress(granted, [rule({ host: 'proc.chain-a.test', port: 443 })], 'proc.chain-a.test', 443, '10.20.9.9')).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('must name explicitly'),
    });
  });

  it('allows a host rule for a public address, on its port only', () => {
    const rules = [rule({ host: 'proc.example.com', port: 443 })];
    expect(checkEgress(strict, rules, 'PROC.example.com', 443, '8.8.8.8')).toMatchObject({ allowed: true });
    expect(checkEgress(strict, rules, 'proc.example.com', 444, '8.8.8.8')).toEqual({ allowed: false, reason: 'no egress rule for port 444' });
    expect(checkEgress(strict, rules, 'evil.example.com', 443, '8.8.8.8')).toMatchObject({ allowed: false });
  });

  it('matches wildcard sub-domains but not the apex', () => {
    const rules = [rule({ host: '*.example.com', port: 443 })];
    expect(checkEgress(strict, rules, 'a.b.example.com', 443, '1.1.1.1').allowed).toBe(true);
    expect(checkEgress(strict, rules, 'example.com', 443, '1.1.1.1').allowed).toBe(false);
    expect(checkEgress(strict, rules, 'badexample.com', 443, '1.1.1.1').allowed).toBe(false);
  });

  it('denies loopback, private, link-local and mapped addresses reached through a name', () => {
    const rules = [rule({ host: 'proc.example.com', port: 443 })];
    for (const address of ['127.0.0.1', '10.1.2.3', '192.168.0.5', '169.254.169.254', '::1', 'fe80::1', '::ffff:127.0.0.1', '100.64.0.1', '0.0.0.0']) {
      const decision = checkEgress(strict, rules, 'proc.example.com', 443, address);
      expect(decision.allowed).toBe(false);
    }
  });

  it('the platform policy wins over any tenant rule, in every spelling', () => {
    const wide = [
      rule({ cidr: '0.0.0.0/0', port: 5432 }),
      rule({ cidr: '::/0', port: 5432 }),
      rule({ host: '127.0.0.1', port: 5432 }),
      rule({ cidr: '169.254.169.254/32', port: 80 }),
    ];
    for (const [host, port, address] of [
      ['127.0.0.1', 5432, '127.0.0.1'],
      ['2130706433', 5432, '127.0.0.1'],
      ['db.internal', 5432, '::ffff:7f00:1'],
      ['metadata', 80, '169.254.169.254'],
      ['v6', 5432, 'fd00:ec2::254'],
    ] as const) {
      const decision = checkEgress(strict, wide, host, port, address);
      expect(decision).toMatchObject({ allowed: false });
      expect((decision as { reason: string }).reason).toContain('denied by the platform egress policy');
    }
  });

  it('allows an operator-allowed internal address only when a rule names it (IP host or CIDR)', () => {
    expect(checkEgress(onPrem, [rule({ cidr: '10.0.0.0/8', port: 7000 })], 'proc.lan', 7000, '10.9.9.9').allowed).toBe(true);
    expect(checkEgress(onPrem, [rule({ host: '10.9.9.9', port: 7000 })], '10.9.9.9', 7000, '10.9.9.9').allowed).toBe(true);
    expect(checkEgress(onPrem, [rule({ host: 'proc.lan', port: 7000 }), rule({ cidr: '10.0.0.0/24', port: 7000 })], 'proc.lan', 7000, '10.9.9.9').allowed).toBe(
      false,
    );
    expect(checkEgress(onPrem, [rule({ cidr: '10.0.0.0/8', port: 7001 })], 'proc.lan', 7000, '10.9.9.9').allowed).toBe(false);
    // Without the operator's allowance the same rule reaches nothing.
    expect(checkEgress(strict, [rule({ cidr: '10.0.0.0/8', port: 7000 })], 'proc.lan', 7000, '10.9.9.9').allowed).toBe(false);
  });

  it('compares IPv4 with IPv4 CIDRs only and never throws on junk', () => {
    expect(checkEgress(strict, [rule({ cidr: '2001:db8::/32', port: 1 })], '8.8.4.4', 1, '8.8.4.4').allowed).toBe(false);
    expect(checkEgress(strict, [rule({ cidr: 'nonsense', port: 1 })], 'x', 1, '8.8.4.4').allowed).toBe(false);
    expect(checkEgress(strict, [rule({ host: 'x', port: 1 })], 'x', 1, 'not-an-ip')).toEqual({ allowed: false, reason: 'unusable resolved address not-an-ip' });
  });
});

describe(precheckEgress.name, () => {
  it('refuses names no rule could allow, before any lookup', () => {
    const rules = [rule({ host: 'proc.example.com', port: 443 })];
    expect(precheckEgress(rules, 'proc.example.com.', 443).allowed).toBe(true);
    expect(precheckEgress(rules, 'exfil.attacker.example', 443)).toEqual({ allowed: false, reason: 'exfil.attacker.example:443 matches no egress rule' });
    expect(precheckEgress(rules, 'proc.example.com', 80)).toEqual({ allowed: false, reason: 'no egress rule for port 80' });
    // A CIDR rule can only be judged on the resolved address.
    expect(precheckEgress([rule({ cidr: '8.8.8.0/24', port: 53 })], 'anything.example', 53).allowed).toBe(true);
  });
});
