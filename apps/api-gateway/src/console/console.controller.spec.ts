import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { type CanActivate, type ExecutionContext, type INestApplication, UnauthorizedException } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import request from 'supertest';

import type { PayorchRequest } from '../common/request-context';
import { ConsoleController } from './console.controller';
import { ConsoleFiles } from './console-files';
import { ConsoleModule } from './console.module';
import { CONSOLE_FILES } from './console.tokens';

/** Stands in for the gateway's ApiKeyGuard: `/console/session` needs a key (`Bearer good`; anything else is a 401), the files none. */
class FakeKeyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<PayorchRequest>();
    if (req.path !== '/console/session') return true;
    if (req.header('authorization') !== 'Bearer good') throw new UnauthorizedException();
    Object.assign(req, { apiKey: { id: 'k1', scopes: ['read'] }, tenant: { tenantId: 't1' } });
    return true;
  }
}

/** The console module as the gateway mounts it (its middleware included), serving `root`. */
async function serve(root: string): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [ConsoleModule],
    providers: [{ provide: APP_GUARD, useClass: FakeKeyGuard }],
  })
    .overrideProvider(CONSOLE_FILES)
    .useValue(new ConsoleFiles(root))
    .compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types lit-html";

/** The headers every answer under /console carries. */
const expectConsoleHeaders = (headers: Record<string, string>) =>
  expect(headers).toMatchObject({
    'content-security-policy': CSP,
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
  });

describe(ConsoleController.name, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'console-'));
  const built = path.join(dir, 'built');
  let app: INestApplication;

  beforeAll(() => {
    mkdirSync(path.join(built, 'assets'), { recursive: true });
    writeFileSync(path.join(built, 'index.html'), '<!doctype html><po-app></po-app>');
    writeFileSync(path.join(built, 'assets/index-abc123.js'), 'export {};');
    writeFileSync(path.join(dir, 'secret.txt'), 'outside the build');
  });

  afterEach(async () => {
    await app?.close();
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves index.html with a self-only CSP for the app and its deep links', async () => {
    app = await serve(built);
    for (const url of ['/console', '/console/', '/console/fleet/anything']) {
      const res = await request(app.getHttpServer()).get(url);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expectConsoleHeaders(res.headers);
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(res.text).toContain('<po-app>');
    }
  });

  it('serves hashed assets with their type, cached for good', async () => {
    app = await serve(built);
    const res = await request(app.getHttpServer()).get('/console/assets/index-abc123.js');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expectConsoleHeaders(res.headers);
  });

  it('answers 404 for a missing file and never serves a file outside the build', async () => {
    app = await serve(built);
    expect((await request(app.getHttpServer()).get('/console/assets/missing.js')).status).toBe(404);
    for (const url of ['/console/%2e%2e/secret.txt', '/console/assets/%2e%2e/%2e%2e/secret.txt', '/console/..%2fsecret.txt']) {
      const res = await request(app.getHttpServer()).get(url);
      expect(res.status).toBe(404);
      expect(res.text).not.toContain('outside the build');
      expectConsoleHeaders(res.headers);
    }
  });

  it('answers a 404 page saying how to build the console when it is not built', async () => {
    app = await serve(path.join(dir, 'nothing-here'));
    const res = await request(app.getHttpServer()).get('/console/');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expectConsoleHeaders(res.headers);
    expect(res.text).toContain('npm run console:build');
  });

  it('sends the same headers with /console/session, a refused one included', async () => {
    app = await serve(built);
    const ok = await request(app.getHttpServer()).get('/console/session').set('Authorization', 'Bearer good');
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ keyId: 'k1', tenantId: 't1', scopes: ['read'] });
    expectConsoleHeaders(ok.headers);
    const refused = await request(app.getHttpServer()).get('/console/session').set('Authorization', 'Bearer wrong');
    expect(refused.status).toBe(401);
    expectConsoleHeaders(refused.headers);
  });
});
