import { randomUUID } from 'node:crypto';

import request from 'supertest';

import { ALL_SCOPES, type Scope } from '@payorch/domain';

import { GatewaySession, idem } from './gateway-session';

/** Every `…:read` scope: a key that may look at everything and change nothing. */
export const READ_SCOPES: Scope[] = ALL_SCOPES.filter((s) => s.endsWith(':read'));

/** An id no tenant has. */
export const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

export type Method = 'get' | 'post' | 'patch' | 'delete';

export interface Caller {
  tenantId: string;
  apiKey: string;
}

export interface Call {
  /** Default: tenant A's key with every scope. */
  as?: Caller;
  body?: unknown;
  query?: Record<string, string | number>;
  headers?: Record<string, string>;
  /** Mutating calls carry a fresh Idempotency-Key unless this is false or a key is given. */
  idempotencyKey?: string | false;
}

/**
 * One running gateway per controller test file (the e2e GatewaySession: its own database cloned
 * from the migrated template, its own Redis prefix), and the callers every controller test needs:
 * tenant A with every scope, a read-only key of A, and tenant B (every scope) whose ids A must
 * never see.
 */
export class ControllerSuite {
  readonly session = new GatewaySession();
  a!: Caller;
  readOnly!: Caller;
  b!: Caller;

  async start(env: Record<string, string> = {}): Promise<this> {
    await this.session.start(env);
    this.a = await this.session.tenant();
    const readOnly = await this.session.admin.createApiKey({
      tenantId: this.a.tenantId,
      name: 'read-only',
      scopes: READ_SCOPES,
    });
    this.readOnly = { tenantId: this.a.tenantId, apiKey: readOnly.apiKey };
    this.b = await this.session.tenant();
    return this;
  }

  stop(): Promise<void> {
    return this.session.stop();
  }

  call(method: Method, path: string, options: Call = {}): Promise<request.Response> {
    const { as = this.a, body, query, headers = {}, idempotencyKey } = options;
    const http = this.session.http();
    let req = http[method](path).set('Authorization', `Bearer ${as.apiKey}`).set(headers);
    if (method !== 'get' && idempotencyKey !== false) req = req.set('Idempotency-Key', idempotencyKey ?? idem());
    if (query) req = req.query(query);
    return body === undefined ? req : req.send(body as object);
  }

  /** POSTs `body` as tenant A (or `as`) and returns the created resource's body; fails unless 201. */
  async create(path: string, body: unknown, as: Caller = this.a): Promise<Record<string, any>> {
    const res = await this.call('post', path, { as, body });
    expectStatus(res, 201);
    return res.body as Record<string, any>;
  }
}

/** The status, with the body in the failure message (an unexpected 500 shows its envelope). */
export function expectStatus(res: request.Response, status: number): void {
  expect({ status: res.status, body: res.body }).toEqual({ status, body: res.body });
}

/** The one error envelope of the gateway: `{ error: { code, message, details, requestId } }` and nothing else. */
export function expectError(res: request.Response, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(Object.keys(res.body)).toEqual(['error']);
  expect(Object.keys(res.body.error).sort()).toEqual(['code', 'details', 'message', 'requestId']);
  expect(res.body.error.message).toEqual(expect.any(String));
  expect(res.body.error.message.length).toBeGreaterThan(0);
  expect(res.body.error.requestId).toBe(res.headers['x-request-id']);
}

/** 400 VALIDATION_FAILED naming each of `fields` in `details.issues` (each issue: field + message, maybe more). */
export function expectInvalid(res: request.Response, ...fields: string[]): void {
  expectError(res, 400, 'VALIDATION_FAILED');
  const issues = res.body.error.details?.issues as { field: string; message: string }[] | undefined;
  expect(issues).toEqual(expect.arrayContaining(fields.map((field) => expect.objectContaining({ field, message: expect.any(String) }))));
}

export function expectNotFound(res: request.Response): void {
  expectError(res, 404, 'NOT_FOUND');
}

/** 403 FORBIDDEN naming the missing scope. */
export function expectForbidden(res: request.Response, missing: Scope): void {
  expectError(res, 403, 'FORBIDDEN');
  expect(res.body.error.details).toEqual({ missing: [missing] });
}

/** A route of one resource: how to call it for a given id. */
export interface IdRoute {
  method: Method;
  /** Path with the id in it. */
  path: (id: string) => string;
  /** A body valid for the route (so the 404 is about the id, not the body). */
  body?: unknown;
}

/**
 * For each route: an unknown id and tenant B's id answer 404 NOT_FOUND (never 403: the id's existence
 * does not leak), and a malformed id 400 before anything is looked up.
 */
export async function expectIdsChecked(suite: ControllerSuite, routes: IdRoute[], ids: { otherTenants: string }): Promise<void> {
  for (const route of routes) {
    for (const id of [UNKNOWN_ID, randomUUID(), ids.otherTenants]) {
      const res = await suite.call(route.method, route.path(id), { body: route.body });
      expectNotFound(res);
    }
    expectError(await suite.call(route.method, route.path('not-a-uuid'), { body: route.body }), 400, 'VALIDATION_FAILED');
  }
}

/** The read-only key of tenant A on each mutating route: 403 naming `scope`, whatever the body. */
export async function expectWritesForbidden(suite: ControllerSuite, routes: { method: Method; path: string; body?: unknown }[], scope: Scope): Promise<void> {
  for (const route of routes) {
    expectForbidden(await suite.call(route.method, route.path, { as: suite.readOnly, body: route.body ?? {} }), scope);
  }
}
