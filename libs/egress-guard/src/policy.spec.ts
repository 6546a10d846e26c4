import { parseAddressLiteral } from './address';
import { EgressPolicy, normaliseGrant } from './policy';
import { EgressError, NAME_REFUSED, resolveDestination } from './resolve';

const addr = (s: string) => parseAddressLiteral(s)!;

describe('EgressPolicy', () => {
  const strict = EgressPolicy.strict();

  it('denies special-purpose addresses and allows public ones by default', () => {
    expect(strict.checkAddress(addr('169.254.169.254'))).toEqual({ allowed: false, address: '169.254.169.254', category: 'link_local' });
    expect(strict.checkAddress(addr('::ffff:7f00:1'))).toEqual({ allowed: false, address: '127.0.0.1', category: 'loopback' });
    expect(strict.checkAddress(addr('8.8.8.8'))).toEqual({ allowed: true, address: '8.8.8.8', by: 'public' });
  });

  it('lets the operator allow specific private ranges, and nothing else', () => {
    const policy = EgressPolicy.fromList('10.20.0.0/16, 127.0.0.2');
    expect(policy.checkAddress(addr('10.20.5.5'))).toMatchObject({ allowed: true, by: 'operator' });
    expect(policy.checkAddress(addr('127.0.0.2'))).toMatchObject({ allowed: true, by: 'operator' });
    expect(policy.checkAddress(addr('127.0.0.1'))).toMatchObject({ allowed: false, category: 'loopback' });
    expect(policy.checkAddress(addr('10.21.0.1'))).toMatchObject({ allowed: false, category: 'private' });
  });

  describe('operator grants (one tenant, one channel)', () => {
    const operator = EgressPolicy.fromList('192.168.7.0/24');
    const granted = operator.withGrants([
      { cidr: '10.20.0.0/16', port: null },
      { cidr: '10.30.0.5', port: 443 },
    ]);

    it("adds the grants to the operator's list in a new policy, leaving the list itself as it was", () => {
      expect(granted.checkAddress(addr('10.20.5.5'))).toMatchObject({ allowed: true, by: 'grant', category: 'private' });
      expect(granted.checkAddress(addr('192.168.7.1'))).toMatchObject({ allowed: true, by: 'operator' });
      expect(operator.checkAddress(addr('10.20.5.5'))).toMatchObject({ allowed: false, category: 'private' });
      expect(granted.checkAddress(addr('10.21.0.1'))).toMatchObject({ allowed: false, category: 'private' });
      expect(granted.checkAddress(addr('8.8.8.8'))).toMatchObject({ allowed: true, by: 'public' });
    });

    it('opens a port-limited grant on that port only (never when the port is not known)', () => {
      expect(granted.checkAddress(addr('10.30.0.5'), 443)).toMatchObject({ allowed: true, by: 'grant' });
      expect(granted.checkAddress(addr('10.30.0.5'), 5432)).toMatchObject({ allowed: false });
      expect(granted.checkAddress(addr('10.30.0.5'))).toMatchObject({ allowed: false });
      expect(granted.refuseCidr('10.30.0.5/32', 443)).toBeNull();
      expect(granted.refuseCidr('10.30.0.5/32', 444)).toMatchObject({ reason: 'denied_range' });
      expect(granted.refuseCidr('10.20.1.0/24', 8443)).toBeNull();
      expect(granted.refuseHost('10.30.0.5', 443)).toBeNull();
      expect(granted.refuseHost('10.30.0.5', 80)).toMatchObject({ reason: 'denied_host' });
    });

    it('opens nothing for a grant that does not parse', () => {
      expect(
        EgressPolicy.strict()
          .withGrants([{ cidr: 'intranet', port: null }])
          .checkAddress(addr('10.0.0.1')),
      ).toMatchObject({ allowed: false });
    });

    it('resolves a name to a granted address only for the port of the grant', async () => {
      const resolver = async () => [{ address: '10.30.0.5' }];
      await expect(resolveDestination('proc.chain-a.test', granted, { resolver, port: 443 })).resolves.toHaveLength(1);
      await expect(resolveDestination('proc.chain-a.test', granted, { resolver, port: 80 })).rejects.toMatchObject({ code: 'DENIED' });
    });

    it('normalises what the operator grants and refuses wide ranges and bad ports', () => {
      expect(normaliseGrant({ cidr: '10.20.3.4/16' })).toEqual({ cidr: '10.20.0.0/16', port: null });
      expect(normaliseGrant({ cidr: '10.30.0.5', port: 443 })).toEqual({ cidr: '10.30.0.5/32', port: 443 });
      expect(normaliseGrant({ cidr: '0.0.0.0/0' })).toMatchObject({ refused: expect.stringContaining('wider') });
      expect(normaliseGrant({ cidr: 'fd00::/8' })).toMatchObject({ refused: expect.stringContaining('wider') });
      expect(normaliseGrant({ cidr: 'intranet' })).toMatchObject({ refused: expect.stringContaining('not a CIDR') });
      expect(normaliseGrant({ cidr: '10.0.0.0/8', port: 0 })).toMatchObject({ refused: expect.stringContaining('port') });
    });
  });

  it('refuses a malformed operator entry at start-up', () => {
    expect(() => EgressPolicy.fromList('10.0.0.0/8, intranet')).toThrow('"intranet" is not a CIDR');
  });

  describe('tenant rules', () => {
    it.each([
      ['0.0.0.0/0', 'too_wide'],
      ['::/0', 'too_wide'],
      ['1.0.0.0/7', 'too_wide'],
      ['2000::/16', 'too_wide'],
      ['127.0.0.1/32', 'denied_range'],
      ['10.0.0.0/8', 'denied_range'],
      ['169.254.169.254/32', 'denied_range'],
      ['192.0.0.0/8', 'denied_range'], // contains 192.168.0.0/16
      ['fd00::/8', 'too_wide'],
      ['fd00:ec2::/32', 'denied_range'],
      ['64:ff9b::/96', 'denied_range'],
      ['2002:7f00::/32', 'denied_range'], // 6to4 of loopback
    ])('CIDR %s is refused (%s)', (cidr, reason) => {
      expect(strict.refuseCidr(cidr)).toMatchObject({ reason });
    });

    it.each(['203.0.114.0/24', '8.8.8.0/24', '2606:4700::/32'])('CIDR %s is accepted', (cidr) => {
      expect(strict.refuseCidr(cidr)).toBeNull();
    });

    it('accepts a private range the operator allows, but not a wider one', () => {
      const policy = EgressPolicy.fromList('10.20.0.0/16');
      expect(policy.refuseCidr('10.20.1.0/24')).toBeNull();
      expect(policy.refuseCidr('10.0.0.0/8')).toMatchObject({ reason: 'denied_range', category: 'private' });
    });

    it.each([
      ['127.0.0.1', 'denied_host'],
      ['2130706433', 'denied_host'],
      ['0x7f.1', 'denied_host'],
      ['[::ffff:7f00:1]', 'denied_host'],
      ['169.254.169.254', 'denied_host'],
      ['localhost', 'denied_host'],
      ['LOCALHOST.', 'denied_host'],
      ['db.localhost', 'denied_host'],
      ['*.com', 'too_wide'],
      ['*', 'too_wide'],
    ])('host %s is refused (%s)', (host, reason) => {
      expect(strict.refuseHost(host)).toMatchObject({ reason });
    });

    it.each(['processing.example.com', '*.bank.example', '8.8.8.8'])('host %s is accepted', (host) => {
      expect(strict.refuseHost(host)).toBeNull();
    });
  });
});

describe('resolveDestination', () => {
  const strict = EgressPolicy.strict();
  const resolver = (answers: Record<string, string[]>) => {
    const calls: string[] = [];
    const fn = async (host: string) => {
      calls.push(host);
      const list = answers[host];
      if (!list) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return list.map((address) => ({ address }));
    };
    return { fn, calls };
  };

  it('resolves a name once and returns every allowed address', async () => {
    const r = resolver({ 'pay.example': ['93.184.216.34', '2606:2800:220:1::1'] });
    const addresses = await resolveDestination('PAY.example.', strict, { resolver: r.fn });
    expect(addresses.map(String)).toEqual(['93.184.216.34', '2606:2800:220:1::1']);
    expect(r.calls).toEqual(['pay.example']);
  });

  it('refuses a name if any address it resolves to is denied (no mixed answers)', async () => {
    const r = resolver({ 'rebind.example': ['93.184.216.34', '169.254.169.254'] });
    const error = await resolveDestination('rebind.example', strict, { resolver: r.fn }).catch((e) => e);
    expect(error).toBeInstanceOf(EgressError);
    expect(error).toMatchObject({ code: 'DENIED', publicReason: NAME_REFUSED, details: { address: '169.254.169.254', category: 'link_local' } });
  });

  it('never asks DNS for literals or localhost names', async () => {
    const r = resolver({});
    await expect(resolveDestination('0x7f.1', strict, { resolver: r.fn })).rejects.toMatchObject({ code: 'DENIED', details: { category: 'loopback' } });
    await expect(resolveDestination('localhost.', strict, { resolver: r.fn })).rejects.toMatchObject({ code: 'DENIED', details: { category: 'loopback' } });
    expect(r.calls).toEqual([]);
  });

  it('reports an unresolvable name without the resolver error text in the public reason', async () => {
    const r = resolver({});
    await expect(resolveDestination('nowhere.example', strict, { resolver: r.fn })).rejects.toMatchObject({
      code: 'UNRESOLVED',
      publicReason: NAME_REFUSED,
    });
  });

  it("tells a tenant the same for a name that does not resolve and one that resolves to a denied address (no map of the platform's internal DNS)", async () => {
    const r = resolver({ 'postgres.payorch.svc.cluster.local': ['10.3.4.5'] });
    const [internal, missing] = await Promise.all(
      ['postgres.payorch.svc.cluster.local', 'nothing.payorch.svc.cluster.local'].map((host) =>
        resolveDestination(host, strict, { resolver: r.fn }).catch((e: EgressError) => e),
      ),
    );
    expect((internal as EgressError).publicReason).toBe((missing as EgressError).publicReason);
    expect((internal as EgressError).publicReason).not.toMatch(/10\.3\.4\.5|private/);
    // A literal is the tenant's own spelling: refused as such.
    await expect(resolveDestination('10.3.4.5', strict, { resolver: r.fn })).rejects.toMatchObject({ publicReason: 'destination not allowed' });
  });
});
