import { Inject, Injectable } from '@nestjs/common';

import { type AgentCredentialLookup, type Database, publishEvent } from '@payorch/db';
import { ApiError, BatchedLookup, issueToken, TOKEN_KINDS, tokenPrefix, verifyToken } from '@payorch/domain';

import { DATABASE } from '../tokens';

export interface AuthenticatedAgent {
  agentId: string;
  tenantId: string;
}

/** An agent authenticated by a credential; the prefix names that credential (a re-enrollment replaces it). */
export interface AuthenticatedCredential extends AuthenticatedAgent {
  credentialPrefix: string;
}

const REJECTED = 'invalid, used or expired enrollment token';

/**
 * An agent's version as it may be stored (Agent.version, its `agent.online` / `agent.enrolled` events, the audit log):
 * from the enrollment body and from each upgrade's X-Payorch-Agent-Version header alike.
 */
export const AGENT_VERSION_PATTERN = /^[0-9A-Za-z.+-]{1,50}$/;

/**
 * Agent identity. An enrollment token (from POST /v1/agents) is exchanged exactly once for a
 * long-lived credential; the credential then authenticates every WebSocket upgrade.
 */
@Injectable()
export class EnrollmentService {
  /** The credential lookups of the upgrades that arrive together, one statement per batch (a reconnect storm). */
  private readonly credentials: BatchedLookup<string, AgentCredentialLookup>;

  constructor(@Inject(DATABASE) private readonly db: Database) {
    this.credentials = new BatchedLookup((prefixes) => db.findAgentsByCredentialPrefixes(prefixes));
  }

  async enroll(token: string, version: string | null): Promise<AuthenticatedAgent & { credential: string }> {
    const prefix = tokenPrefix(token, 'pen');
    const found = prefix ? await this.db.findAgentByEnrollmentPrefix(prefix) : null;
    if (
      !found ||
      !found.enrollmentTokenHash ||
      !verifyToken(token, found.enrollmentTokenHash) ||
      found.status === 'REVOKED' ||
      !found.enrollmentExpiresAt ||
      found.enrollmentExpiresAt <= new Date()
    ) {
      throw new ApiError('UNAUTHENTICATED', REJECTED);
    }
    const credential = issueToken(TOKEN_KINDS.agentCredential);
    const used = await this.db.withTenant(found.tenantId, async (tx) => {
      // Conditional on the token still being there: two concurrent exchanges cannot both win.
      const { count } = await tx.agent.updateMany({
        where: { id: found.id, enrollmentTokenPrefix: prefix, status: { not: 'REVOKED' } },
        data: {
          status: 'ACTIVE',
          credentialHash: credential.hash,
          credentialPrefix: credential.prefix,
          enrollmentTokenHash: null,
          enrollmentTokenPrefix: null,
          enrollmentExpiresAt: null,
          version,
        },
      });
      if (count === 1) {
        await tx.auditLog.create({
          data: {
            tenantId: found.tenantId,
            actorType: 'agent',
            actorId: found.id,
            action: 'agent.enroll',
            resourceType: 'agent',
            resourceId: found.id,
            details: { version },
          },
        });
        // A connector holding a tunnel on the previous credential hears this and closes it (live revocation).
        await publishEvent(tx, found.tenantId, { type: 'agent.enrolled', subjectType: 'agent', subjectId: found.id, data: { agentId: found.id, version } });
      }
      return count === 1;
    });
    if (!used) throw new ApiError('UNAUTHENTICATED', REJECTED);
    return { agentId: found.id, tenantId: found.tenantId, credential: credential.token };
  }

  /** The agent a credential belongs to, or null (unknown, wrong, revoked). */
  async authenticate(credential: string): Promise<AuthenticatedCredential | null> {
    const prefix = tokenPrefix(credential, 'pac');
    const found = prefix ? await this.credentials.get(prefix) : undefined;
    if (!prefix || !found || !found.credentialHash || found.status !== 'ACTIVE' || !verifyToken(credential, found.credentialHash)) {
      return null;
    }
    return { agentId: found.id, tenantId: found.tenantId, credentialPrefix: prefix };
  }
}
