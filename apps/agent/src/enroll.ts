import { enrollmentUrl, parseConnectorUrl, type StoredCredential } from './config';
import { AGENT_VERSION } from './version';

/**
 * Exchanges the one-time enrollment token for the agent's credential at the connector's
 * enrollment endpoint (`wss://host/agent` → `POST https://host/agent/enroll`). Throws
 * `enrollment refused by …` when the connector answered and said no; other errors mean it was not
 * reached.
 */
export async function enroll(connector: string, token: string, fetchImpl: typeof fetch = fetch): Promise<StoredCredential> {
  const endpoint = parseConnectorUrl(connector);
  const res = await fetchImpl(enrollmentUrl(endpoint), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token, version: AGENT_VERSION }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json().catch(() => null)) as { agentId?: string; tenantId?: string; credential?: string; error?: { message?: string } } | null;
  if (!res.ok || !body?.credential || !body.agentId || !body.tenantId) {
    const reason = body?.error?.message ?? `HTTP ${res.status}`;
    throw new Error(`enrollment refused by ${endpoint}: ${reason}`);
  }
  return { connector: endpoint, agentId: body.agentId, tenantId: body.tenantId, credential: body.credential, enrolledAt: new Date().toISOString() };
}
