import type { AddressInfo } from 'node:net';

import type { INestApplication } from '@nestjs/common';

import { connectorConfigSchema, loadConfig } from '@payorch/config';
import { createLogger } from '@payorch/logging';

import { type ConnectorAppOptions, createConnectorApp } from '../../apps/device-connector/src/bootstrap';
import type { GatewaySession } from '../../test/e2e/support/gateway-session';
import { post } from './clients';

const silent = createLogger({ name: 'bench', level: 'silent' });

/** The deployment path's pieces around a started gateway: a device connector, a tenant, a store and an enrolled agent. */
export interface DeploymentStack {
  connector: INestApplication;
  connectorPort: number;
  connectorUrl: string;
  /** The gateway's base URL. */
  base: string;
  apiKey: string;
  storeId: string;
  agentId: string;
  /** The agent's credential, to dial the connector with. */
  credential: string;
}

/**
 * Starts a device connector on the gateway session's database, Redis prefix and master key (as test/e2e/full-stack
 * wires them), then makes a tenant, a store and an agent through the API and enrols the agent. The caller closes
 * `connector` (before the session).
 */
export async function deploymentStack(
  session: GatewaySession,
  instanceId: string,
  env: Record<string, string> = {},
  options: ConnectorAppOptions = {},
): Promise<DeploymentStack> {
  const config = loadConfig('device-connector', connectorConfigSchema, {
    DATABASE_APP_URL: session.testDb.appUrl,
    REDIS_KEY_PREFIX: session.config.REDIS_KEY_PREFIX,
    PAYORCH_MASTER_KEY: session.config.PAYORCH_MASTER_KEY,
    CONNECTOR_INSTANCE_ID: instanceId,
    LOG_LEVEL: 'silent',
    ...env,
  });
  const connector = await createConnectorApp(config, silent, options);
  try {
    await connector.listen(0, '127.0.0.1');
    const connectorPort = (connector.getHttpServer().address() as AddressInfo).port;
    const connectorUrl = `http://127.0.0.1:${connectorPort}`;
    const { apiKey } = await session.tenant();
    const base = `http://127.0.0.1:${(session.app.getHttpServer().address() as AddressInfo).port}`;
    const storeId = (await post(base, apiKey, '/v1/stores', { name: 'Bench', timeZone: 'UTC' })).id as string;
    const agent = (await post(base, apiKey, '/v1/agents', { name: 'Till', storeId })) as { agent: { id: string }; enrollmentToken: string };
    const enrolled = await fetch(`${connectorUrl}/agent/enroll`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: agent.enrollmentToken }),
    });
    const { credential } = (await enrolled.json()) as { credential: string };
    return { connector, connectorPort, connectorUrl, base, apiKey, storeId, agentId: agent.agent.id, credential };
  } catch (error) {
    await connector.close();
    throw error;
  }
}
