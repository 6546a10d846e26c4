import { GatewaySession } from '../e2e/support/gateway-session';

/**
 * The failed-authentication throttle (docs/security.md, "Input hygiene, the error envelope and authentication
 * throttling") against a client that chooses the address it is counted under. Behind the deployed proxy
 * (deploy/nginx/nginx.conf: `X-Forwarded-For $proxy_add_x_forwarded_for`, TRUST_PROXY=true) the gateway sees
 * `<whatever the client sent>, <the client's real address>`; the tests send exactly that.
 */
describe('failed-authentication throttle: the address a client is counted under', () => {
  const session = new GatewaySession();
  const AUTH_FAILURE_LIMIT = 3;
  let auth: { Authorization: string };

  beforeAll(async () => {
    await session.start({ AUTH_FAILURE_LIMIT: String(AUTH_FAILURE_LIMIT), TRUST_PROXY: 'true' });
    auth = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
  });

  afterAll(() => session.stop());

  const attempt = (forwardedFor: string, authorization: string) =>
    session.http().get('/v1/stores').set('X-Forwarded-For', forwardedFor).set('Authorization', authorization);
  /** A well-formed key whose prefix names no key (looked up, then refused). */
  const wrongKey = (i: number) => `Bearer pok_guessedpref${'abcdefgh'[i]}_${'x'.repeat(43)}`;

  it('an X-Forwarded-For the client sent itself does not choose its address: the proxy-appended entry does', async () => {
    const statuses: number[] = [];
    // A new spoofed entry per guess; the proxy appends the same real address each time.
    for (let i = 0; i <= AUTH_FAILURE_LIMIT; i++) statuses.push((await attempt(`198.51.100.${i + 1}, 203.0.113.20`, wrongKey(i))).status);
    expect(statuses).toEqual([...Array<number>(AUTH_FAILURE_LIMIT).fill(401), 429]);
    // Blocked whatever it claims to be, even with a valid key; the address it claimed is not.
    expect((await attempt('198.51.100.200, 203.0.113.20', auth.Authorization)).status).toBe(429);
    expect((await attempt('198.51.100.1', auth.Authorization)).status).toBe(200);
  });

  it('the addresses of one IPv6 /64 (one host or one customer line) share one budget; another /64 keeps its own', async () => {
    const statuses: number[] = [];
    for (let i = 0; i <= AUTH_FAILURE_LIMIT; i++) statuses.push((await attempt(`2001:db8:7:7::${(i + 1).toString(16)}`, wrongKey(i))).status);
    expect(statuses).toEqual([...Array<number>(AUTH_FAILURE_LIMIT).fill(401), 429]);
    expect((await attempt('2001:db8:7:7:ffff:ffff:ffff:fffe', auth.Authorization)).status).toBe(429);
    expect((await attempt('2001:db8:7:8::1', auth.Authorization)).status).toBe(200);
  });

  it('the audit row of a failure names the full address, not the /64 it is counted under', async () => {
    const t = await session.tenant();
    const prefix = t.apiKey.split('_').slice(0, 2).join('_');
    expect((await attempt('2001:db8:9:9::abcd', `Bearer ${prefix}_${'w'.repeat(43)}`)).status).toBe(401);
    const rows = await session.owner.auditLog.findMany({ where: { tenantId: t.tenantId, action: 'api_key.auth_failed' } });
    expect(rows.map((r) => r.actorId)).toEqual(['2001:db8:9:9::abcd']);
  });
});
