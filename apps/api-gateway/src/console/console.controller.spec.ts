import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';

import { ConsoleController } from './console.controller';
import { ConsoleFiles } from './console-files';
import { CONSOLE_FILES } from './console.tokens';

async function serve(root: string): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    controllers: [ConsoleController],
    providers: [{ provide: CONSOLE_FILES, useValue: new ConsoleFiles(root) }],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

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
      expect(res.headers['content-security-policy']).toBe(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
      );
      expect(res.headers['x-frame-options']).toBe('DENY');
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
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('answers 404 for a missing file and never serves a file outside the build', async () => {
    app = await serve(built);
    expect((await request(app.getHttpServer()).get('/console/assets/missing.js')).status).toBe(404);
    for (const url of ['/console/%2e%2e/secret.txt', '/console/assets/%2e%2e/%2e%2e/secret.txt', '/console/..%2fsecret.txt']) {
      const res = await request(app.getHttpServer()).get(url);
      expect(res.status).toBe(404);
      expect(res.text).not.toContain('outside the build');
    }
  });

  it('answers a 404 page saying how to build the console when it is not built', async () => {
    app = await serve(path.join(dir, 'nothing-here'));
    const res = await request(app.getHttpServer()).get('/console/');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.text).toContain('npm run console:build');
  });
});
