import os from 'node:os';

import { Command, InvalidArgumentError } from 'commander';

import { adminConfigSchema, type AdminConfig, loadConfig } from '@payorch/config';
import { createPrismaClient, type PublishedEvent } from '@payorch/db';
import { PayorchError, SecretBox } from '@payorch/domain';
import { announceKeysChanged, notifyCommitted } from '@payorch/operations';
import { createRedisClient } from '@payorch/redis';

import { AdminService } from './admin.service';

/**
 * payorch admin CLI (operators only; uses the owner connection DATABASE_URL):
 *   npm run admin -- tenant create --name "Chain A"
 *   npm run admin -- apikey create --tenant <id> --name first-admin [--scopes admin]
 *     (the tenant's first key; it manages the others through /v1/api-keys — docs/security.md)
 *   npm run admin -- apikey revoke --id <keyId>
 *   npm run admin -- tenant disable --id <tenantId>   (and `tenant enable`)
 *   npm run admin -- egress grant --tenant <id> --channel webhook|assist|relay --cidr 10.20.0.0/16 [--port 443]
 *     (opens a special-purpose range to ONE tenant for ONE channel; `egress grants --tenant <id>`, `egress revoke --id <grantId>`)
 * Prints JSON. A new API key is printed once and never stored.
 */
/** The CLI's whole configuration, from the environment through its zod schema (read when a command runs, not for --help). */
function config(): AdminConfig {
  return loadConfig('payorch-admin', adminConfigSchema);
}

async function run(action: (admin: AdminService) => Promise<unknown>): Promise<void> {
  const { DATABASE_URL, REDIS_KEY_PREFIX, REDIS_URL } = config();
  const prisma = createPrismaClient(DATABASE_URL, { max: 1 });
  // With REDIS_URL, committed events (tenant.disabled…) reach the connectors at once; without it they
  // act on their next periodic re-check against PostgreSQL.
  const redis = REDIS_URL ? createRedisClient(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 }) : null;
  const published: Promise<unknown>[] = [];
  const onCommitted = redis
    ? (events: readonly PublishedEvent[]) => {
        published.push(notifyCommitted(redis, REDIS_KEY_PREFIX, events));
      }
    : undefined;
  // Revocations and tenant status changes: every gateway forgets the tenant's API-key lookups at once (ApiKeyLookups).
  const onKeysChanged = redis
    ? announceKeysChanged(redis, REDIS_KEY_PREFIX, (error, tenantId) =>
        process.stderr.write(
          `warning: the change to tenant ${tenantId}'s API keys is committed but could not be announced (${error.message}); ` +
            `gateways keep accepting its old key lookups for up to API_KEY_CACHE_MS\n`,
        ),
      )
    : undefined;
  try {
    const result = await action(new AdminService(prisma, `${os.userInfo().username}@${os.hostname()}`, onCommitted, onKeysChanged));
    await Promise.all(published);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    redis?.disconnect();
    await prisma.$disconnect();
  }
}

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number');
  return n;
};

const program = new Command('payorch-admin').description('payorch operator commands').showHelpAfterError();

const tenant = program.command('tenant').description('tenants');
tenant
  .command('create')
  .requiredOption('--name <name>', 'display name of the chain')
  .action((o: { name: string }) => run((a) => a.createTenant(o.name)));
tenant.command('list').action(() => run((a) => a.listTenants()));
tenant
  .command('disable')
  .description("refuse the tenant's API keys and agents at once (live tunnels are closed); data is kept")
  .requiredOption('--id <tenantId>', 'tenant id')
  .action((o: { id: string }) => run((a) => a.setTenantStatus(o.id, 'DISABLED')));
tenant
  .command('enable')
  .description("accept the tenant's API keys and agents again")
  .requiredOption('--id <tenantId>', 'tenant id')
  .action((o: { id: string }) => run((a) => a.setTenantStatus(o.id, 'ACTIVE')));

const apikey = program.command('apikey').description('API keys');
apikey
  .command('create')
  .requiredOption('--tenant <id>', 'tenant id')
  .requiredOption('--name <name>', 'what the key is for')
  .option('--scopes <list>', 'comma-separated scopes: roles read|operate|admin and/or fine scopes (default: admin)')
  .option('--expires-in-days <n>', 'expiry', positiveInt)
  .action((o: { tenant: string; name: string; scopes?: string; expiresInDays?: number }) =>
    run((a) => a.createApiKey({ tenantId: o.tenant, name: o.name, scopes: o.scopes?.split(',').map((s) => s.trim()), expiresInDays: o.expiresInDays })),
  );
apikey
  .command('list')
  .requiredOption('--tenant <id>', 'tenant id')
  .action((o: { tenant: string }) => run((a) => a.listApiKeys(o.tenant)));
apikey
  .command('revoke')
  .requiredOption('--id <keyId>', 'API key id')
  .action((o: { id: string }) => run((a) => a.revokeApiKey(o.id)));

const egress = program.command('egress').description("egress grants: special-purpose ranges opened to one tenant's channel (docs/security.md)");
egress
  .command('grant')
  .description('open a range (CIDR or address) to ONE tenant for ONE channel; EGRESS_ALLOW_CIDRS opens it to every tenant and channel')
  .requiredOption('--tenant <id>', 'tenant id')
  .requiredOption('--channel <channel>', 'webhook | assist | relay')
  .requiredOption('--cidr <cidr>', 'e.g. 10.20.0.0/16 (at most /8 for IPv4, /32 for IPv6)')
  .option('--port <n>', 'the only port it opens (default: every port)', positiveInt)
  .option('--description <text>', 'what it is for (e.g. "on-premises processing host")')
  .action((o: { tenant: string; channel: string; cidr: string; port?: number; description?: string }) =>
    run((a) => a.createEgressGrant({ tenantId: o.tenant, channel: o.channel, cidr: o.cidr, port: o.port, description: o.description })),
  );
egress
  .command('grants')
  .description("a tenant's egress grants")
  .requiredOption('--tenant <id>', 'tenant id')
  .action((o: { tenant: string }) => run((a) => a.listEgressGrants(o.tenant)));
egress
  .command('revoke')
  .description('withdraw a grant (applies to the next connection of its channel)')
  .requiredOption('--id <grantId>', 'egress grant id')
  .action((o: { id: string }) => run((a) => a.revokeEgressGrant(o.id)));

program
  .command('secrets')
  .description('secrets at rest')
  .command('rewrap')
  .description('re-seal every secret under the active PAYORCH_MASTER_KEY (after a key rotation)')
  .action(() =>
    run((a) => {
      const { PAYORCH_MASTER_KEY, PAYORCH_PREVIOUS_MASTER_KEYS } = config();
      if (!PAYORCH_MASTER_KEY) throw new PayorchError('CONFIG', 'PAYORCH_MASTER_KEY is not set');
      return a.rewrapSecrets(SecretBox.fromConfig(PAYORCH_MASTER_KEY, PAYORCH_PREVIOUS_MASTER_KEYS));
    }),
  );

program.parseAsync(process.argv).catch((error: unknown) => {
  const code = error instanceof PayorchError ? `${error.code}: ` : '';
  process.stderr.write(`error: ${code}${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
