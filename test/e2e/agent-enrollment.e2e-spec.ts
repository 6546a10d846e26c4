import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { INestApplication } from '@nestjs/common';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { createLogger } from '@payorch/logging';
import { REPO_ROOT, tsEntryArgs, waitFor } from '@payorch/testing';

import { createConnectorApp } from '../../apps/device-connector/src/bootstrap';
import { GatewaySession, idem } from './support/gateway-session';

describe('agent enrollment end to end (gateway → agent CLI → connector)', () => {
  const session = new GatewaySession();
  let connector: INestApplication;
  let connectorUrl: string;
  let agentProcess: ChildProcess | undefined;
  let port: number;

  const startConnector = async () => {
    const config = loadConfig('device-connector', connectorConfigSchema, {
      DATABASE_APP_URL: session.testDb.appUrl,
      REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
      PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
      LOG_LEVEL: 'silent',
    });
    connector = await createConnectorApp(config, createLogger({ name: 'test', level: 'silent' }));
    await connector.listen(port, '127.0.0.1');
    port = (connector.getHttpServer().address() as AddressInfo).port;
    connectorUrl = `http://127.0.0.1:${port}`;
  };

  beforeAll(async () => {
    await session.start();
    port = 0;
    await startConnector();
  });

  afterAll(async () => {
    agentProcess?.kill('SIGKILL');
    await connector.close();
    await session.stop();
  });

  it('enrolls with the one-time token, comes online, and stops with a clear error once revoked', async () => {
    const { apiKey } = await session.tenant();
    const auth = { Authorization: `Bearer ${apiKey}` };
    const store = await session.http().post('/v1/stores').set(auth).set('Idempotency-Key', idem()).send({ name: 'Shop', timeZone: 'Europe/Moscow' });
    const created = await session.http().post('/v1/agents').set(auth).set('Idempotency-Key', idem()).send({ name: 'Till 1', storeId: store.body.id });
    expect(created.status).toBe(201);
    expect(created.body.agent.status).toBe('pending_enrollment');
    const agentId = created.body.agent.id as string;

    const stateDir = mkdtempSync(path.join(tmpdir(), 'agent-e2e-'));
    let stderr = '';
    agentProcess = spawn(
      process.execPath,
      tsEntryArgs(
        'apps/agent/src/cli.ts',
        '--connector',
        `${connectorUrl.replace(/^http/, 'ws')}/agent`,
        '--token',
        created.body.enrollmentToken,
        '--state-dir',
        stateDir,
        '--log-level',
        'warn',
      ),
      { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    agentProcess.stderr!.on('data', (d) => (stderr += String(d)));
    const exited = new Promise<number | null>((resolve) => agentProcess!.once('exit', (code) => resolve(code)));

    const online = await waitFor(
      async () => {
        const res = await session.http().get(`/v1/agents/${agentId}`).set(auth);
        return res.body.status === 'active' && res.body.lastSeenAt ? res.body : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}; agent stderr:\n${stderr}`);
    });
    expect(online.version).toBe('0.1.0');
    expect(stderr).toContain(`enrolled as agent ${agentId}`);

    // The token is dead now.
    const reuse = await fetch(`${connectorUrl}/agent/enroll`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: created.body.enrollmentToken }),
    });
    expect(reuse.status).toBe(401);

    // Revoke, then restart the connector: the agent's reconnect is refused and it stops for good.
    const revoked = await session.http().post(`/v1/agents/${agentId}/revoke`).set(auth).set('Idempotency-Key', idem());
    expect(revoked.body.status).toBe('revoked');
    await connector.close();
    await startConnector();
    expect(await exited).toBe(1);
    expect(stderr).toContain('connector refused the credential (HTTP 401)');
  });
});
