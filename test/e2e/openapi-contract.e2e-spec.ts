import { readFileSync } from 'node:fs';
import path from 'node:path';

import { nonWireCaseEnums } from '../../apps/api-gateway/src/common/openapi';
import { statusOf } from '../../apps/api-gateway/src/common/error.filter';
import { serializeDocument } from '../../apps/api-gateway/src/openapi-document';
import type { ApiErrorCode } from '@payorch/domain';

import { GatewaySession, idem } from './support/gateway-session';

/**
 * The API contract (docs/architecture.md, "API contract"): the document the gateway serves is the committed
 * docs/openapi.json (regenerate: `npm run docs:openapi`), and it holds what a generated client needs.
 */
type Json = Record<string, any>;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

describe('OpenAPI contract', () => {
  const session = new GatewaySession();
  let auth: { Authorization: string };
  let served: Json;
  const operations: { method: string; path: string; op: Json }[] = [];

  beforeAll(async () => {
    await session.start();
    auth = { Authorization: `Bearer ${(await session.tenant()).apiKey}` };
    const res = await session.http().get('/docs/openapi.json');
    if (res.status !== 200) throw new Error(`GET /docs/openapi.json: ${res.status}`);
    served = res.body as Json;
    for (const [p, item] of Object.entries<Json>(served.paths)) for (const m of METHODS) if (item[m]) operations.push({ method: m, path: p, op: item[m] });
  });
  afterAll(() => session.stop());

  it('serves exactly the committed docs/openapi.json (npm run docs:openapi regenerates it)', () => {
    const committed = readFileSync(path.join(__dirname, '../../docs/openapi.json'), 'utf8');
    expect(serializeDocument(served)).toBe(committed);
  });

  it('uses one enum casing: every enum value is lower snake_case (error codes excepted)', () => {
    expect(nonWireCaseEnums(served)).toEqual([]);
    expect(served.components.schemas.TerminalStatus.enum).toEqual(['unknown', 'online', 'offline', 'disabled']);
    expect(served.components.schemas.WalletPaymentState.enum).toContain('partially_captured');
  });

  it('declares the API key as an HTTP bearer scheme and lists the scopes of every operation', () => {
    expect(served.components.securitySchemes).toEqual({ apiKey: expect.objectContaining({ type: 'http', scheme: 'bearer' }) });
    expect(JSON.stringify(served)).not.toContain('JWT');
    for (const { method, path: p, op } of operations) {
      expect([`${method} ${p}`, op.security]).toEqual([`${method} ${p}`, [{ apiKey: [] }]]);
      expect([`${method} ${p}`, op['x-scopes'].length > 0]).toEqual([`${method} ${p}`, true]);
    }
    expect(served.paths['/v1/stores'].post['x-scopes']).toEqual(['stores:write']);
  });

  it('sends Idempotency-Key once on every mutating operation and never on reads', () => {
    for (const { method, path: p, op } of operations) {
      const keys = (op.parameters ?? []).filter((x: Json) => x.$ref === '#/components/parameters/IdempotencyKey' || /^idempotency-key$/i.test(x.name ?? ''));
      expect([`${method} ${p}`, keys.length]).toEqual([`${method} ${p}`, method === 'get' ? 0 : 1]);
    }
  });

  it('names every JSON body (no inline schemas) and documents query parameters', () => {
    for (const { method, path: p, op } of operations) {
      const media = [
        ...Object.values<Json>(op.requestBody?.content ?? {}),
        ...Object.values<Json>(op.responses).flatMap((r) =>
          Object.entries<Json>(r.content ?? {})
            .filter(([type]) => type === 'application/json')
            .map(([, m]) => m),
        ),
      ];
      for (const m of media) expect([`${method} ${p}`, m.schema.$ref]).toEqual([`${method} ${p}`, expect.stringMatching(/^#\/components\/schemas\/\w+$/)]);
    }
    const params = served.paths['/v1/terminals'].get.parameters.map((x: Json) => x.name);
    expect(params).toEqual(expect.arrayContaining(['cursor', 'limit', 'storeId', 'agentId', 'protocol', 'status']));
    const status = served.paths['/v1/terminals'].get.parameters.find((x: Json) => x.name === 'status');
    expect(status.schema).toEqual({ $ref: '#/components/schemas/TerminalStatus' });
  });

  it('answers every error with the one envelope, listing per status the codes it can carry (status from the error filter)', () => {
    for (const { method, path: p, op } of operations) {
      const errors = Object.entries<Json>(op.responses).filter(([status]) => Number(status) >= 400);
      expect(errors.map(([s]) => s)).toEqual(expect.arrayContaining(['400', '401', '403', '429', '500', '503']));
      for (const [status, response] of errors) {
        expect(response.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
        for (const code of response['x-error-codes'] as ApiErrorCode[]) {
          // 413 / 415 (body too large / not JSON) carry VALIDATION_FAILED; every other status is the filter's statusOf(code).
          const expected = status === '413' || status === '415' ? (code === 'VALIDATION_FAILED' ? Number(status) : -1) : statusOf(code);
          expect([`${method} ${p} ${code}`, expected]).toEqual([`${method} ${p} ${code}`, Number(status)]);
        }
      }
      if (method !== 'get')
        expect(op.responses['409']['x-error-codes']).toEqual(expect.arrayContaining(['IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_KEY_IN_PROGRESS']));
    }
    expect(served.paths['/v1/terminals/{id}/operations'].post.responses['409']['x-error-codes']).toEqual(
      expect.arrayContaining(['TERMINAL_DISABLED', 'AGENT_REVOKED', 'TERMINAL_RECOVERING']),
    );
    expect(served.paths['/v1/terminals/{id}/operations'].post.responses['409'].headers['Retry-After']).toBeDefined();
    expect(served.components.schemas.ErrorCode.enum).toContain('WALLET_AMOUNT_EXCEEDS_CAPTURED');
  });

  it('accepts only the lower snake_case values on input and answers with them', async () => {
    const post = (route: string, body: object) => session.http().post(route).set(auth).set('Idempotency-Key', idem()).send(body);
    const store = await post('/v1/stores', { name: 'S', timeZone: 'UTC' });
    const connection = { kind: 'tcp_listen', port: 7000 };
    const old = await post('/v1/terminals', { name: 'T', storeId: store.body.id, protocol: 'JOINPROTO', connection });
    expect(old.status).toBe(400);
    expect(old.body.error).toMatchObject({ code: 'VALIDATION_FAILED', details: { issues: [expect.objectContaining({ field: 'protocol' })] } });
    const oldKind = await post('/v1/terminals', { name: 'T', storeId: store.body.id, protocol: 'ssi_ecr', connection: { kind: 'tcp-listen', port: 7000 } });
    expect(oldKind.status).toBe(400);

    const created = await post('/v1/terminals', { name: 'T', storeId: store.body.id, protocol: 'ssi_ecr', connection });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ protocol: 'ssi_ecr', status: 'unknown', connection });
    // The database keeps its own enums; the agent still gets its `tcp-listen` connection kind.
    expect(await session.owner.terminal.findUniqueOrThrow({ where: { id: created.body.id } })).toMatchObject({
      protocol: 'SSI_ECR',
      status: 'UNKNOWN',
      connection: { kind: 'tcp-listen', port: 7000 },
    });

    expect((await session.http().get('/v1/terminals').query({ status: 'UNKNOWN' }).set(auth)).status).toBe(400);
    const listed = await session.http().get('/v1/terminals').query({ status: 'unknown', protocol: 'ssi_ecr' }).set(auth);
    expect(listed.body.data.map((t: { id: string }) => t.id)).toEqual([created.body.id]);

    const disabled = await session.http().patch(`/v1/terminals/${created.body.id}`).set(auth).set('Idempotency-Key', idem()).send({ disabled: true });
    expect(disabled.body.status).toBe('disabled');
    // The code this answer carries is one the contract lists for the route and status.
    const refused = await post(`/v1/terminals/${created.body.id}/operations`, { type: 'purchase', amount: 100, currency: 'RUB' });
    expect(refused.status).toBe(409);
    expect(served.paths['/v1/terminals/{id}/operations'].post.responses['409']['x-error-codes']).toContain(refused.body.error.code);
  });
});
