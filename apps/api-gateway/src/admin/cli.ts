import os from 'node:os';

import { Command, InvalidArgumentError, Option } from 'commander';

import { adminConfigSchema, type AdminConfig, loadConfig } from '@payorch/config';
import { createPrismaClient, type PublishedEvent } from '@payorch/db';
import { PayorchError, SecretBox } from '@payorch/domain';
import { announceKeysChanged, notifyCommitted } from '@payorch/operations';
import { createRedisClient } from '@payorch/redis';

import { isoInstant } from '../common/zod';
import { AdminService, reasonOf, type RewrapResult } from './admin.service';
import { FailedJobs, isQueueName, type JobRetryAudit, QUEUE_NAMES, type QueueName, type RetryResult } from './failed-jobs';

/**
 * payorch admin CLI (operators only; uses the owner connection DATABASE_URL):
 *   npm run admin -- tenant create --name "Chain A"
 *   npm run admin -- apikey create --tenant <id> --name first-admin [--scopes admin]
 *     (the tenant's first key; it manages the others through /v1/api-keys — docs/security.md)
 *   npm run admin -- apikey revoke --id <keyId>
 *   npm run admin -- tenant disable --id <tenantId>   (and `tenant enable`)
 *   npm run admin -- egress grant --tenant <id> --channel webhook|assist|relay --cidr 10.20.0.0/16 [--port 443]
 *     (opens a special-purpose range to ONE tenant for ONE channel; `egress grants --tenant <id>`, `egress revoke --id <grantId>`)
 *   npm run admin -- jobs failed --queue <name> [--limit N]
 *   npm run admin -- jobs retry --queue <name> (--id <jobId> | --all)
 *     (BullMQ jobs that used up their attempts, payorch_queue_jobs{state="failed"}: list them, move them back to waiting
 *     once the cause is fixed; REDIS_URL and REDIS_KEY_PREFIX as the workers'; `retry` also DATABASE_URL: each retry
 *     is audited, `job.retry`, in its tenant's audit log, or the platform's for a job of no tenant)
 *   npm run admin -- secrets rewrap   (after a PAYORCH_MASTER_KEY rotation; audited in the platform audit log: each batch of
 *     secrets commits with its `secrets.rewrap.batch` row, the run ends with a `secrets.rewrap` summary row)
 *   npm run admin -- audit list (--platform | --tenant <id>) [--limit N] [--action <action>] [--since <instant>] [--cursor <c>]
 *     (an audit log, newest first: the platform's, the operator's actions that concern no tenant, or a tenant's)
 * Prints JSON. A new API key is printed once and never stored.
 *
 * Every command that changes something is audited (actor type "admin", actor `user@host`): in the log of the tenant it
 * concerns, or in the platform audit log when it concerns none (AdminService). A change in PostgreSQL commits with its
 * row, so a row that cannot be written changes nothing and the command exits 1, `AUDIT_FAILED` (a batch of `secrets
 * rewrap` included: the run stops there, the secrets it re-sealed before kept, each recorded by its batch row); one in
 * Redis (`jobs retry`) stays made, as do the secrets of a `secrets rewrap` whose summary row cannot be written (each
 * recorded by its batch row), and the command prints it with `"audit": "failed"` and exits 1, `AUDIT_FAILED`. A
 * `secrets rewrap` stopped at a secret it cannot open (or by the database lost midway) exits 1, `REWRAP_STOPPED`.
 */
/** The CLI's whole configuration, from the environment through its zod schema (read when a command runs, not for --help). */
function config(): AdminConfig {
  return loadConfig('payorch-admin', adminConfigSchema);
}

/** Who runs the command: the actor id of its audit rows (actor type "admin"). */
const operator = () => `${os.userInfo().username}@${os.hostname()}`;

function print(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

/**
 * Runs one command on the owner connection and prints its result; `report` (after the result is printed) throws for a
 * result that must fail the command (a change not audited, a run stopped early).
 */
async function run<T>(action: (admin: AdminService) => Promise<T>, report?: (result: T) => void): Promise<void> {
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
    const result = await action(new AdminService(prisma, operator(), onCommitted, onKeysChanged));
    await Promise.all(published);
    print(result);
    report?.(result);
  } finally {
    redis?.disconnect();
    await prisma.$disconnect();
  }
}

/**
 * The `jobs` commands: the queues' failed sets, on Redis (the workers' REDIS_URL and REDIS_KEY_PREFIX, so the same
 * BullMQ keys). It connects once, without retrying: a Redis that is away fails the command rather than holding it.
 */
async function withFailedJobs(action: (jobs: FailedJobs) => Promise<void>): Promise<void> {
  const { REDIS_KEY_PREFIX, REDIS_URL } = loadConfig('payorch-admin', adminConfigSchema.pick({ REDIS_KEY_PREFIX: true, REDIS_URL: true }));
  if (!REDIS_URL) throw new PayorchError('CONFIG', "REDIS_URL is not set: the jobs commands read the queues in Redis (the workers' REDIS_URL)");
  const redis = createRedisClient(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  // The socket's error (ECONNREFUSED…) says more than the rejection of connect() ("Connection is closed.").
  let socketError: Error | undefined;
  redis.on('error', (error: Error) => (socketError = error));
  const jobs = new FailedJobs(redis, REDIS_KEY_PREFIX);
  try {
    await redis.connect().catch((error: unknown) => {
      const reason = socketError?.message ?? (error instanceof Error ? error.message : String(error));
      throw new PayorchError('REDIS_UNAVAILABLE', `cannot reach Redis at REDIS_URL (${reason}); nothing was done`);
    });
    await action(jobs);
  } finally {
    await jobs.close();
    redis.disconnect();
  }
}

/**
 * `jobs retry`: every retry is audited (AdminService.auditJobRetry, the owner connection DATABASE_URL, actor "admin"),
 * in its tenant's audit log, or the platform's for a deployment-wide job (no tenant), so PostgreSQL is checked before
 * anything moves. Prints the result, and fails (exit 1) naming the jobs retried but not audited, or why `--all`
 * stopped early.
 */
async function retryJobs(retry: (jobs: FailedJobs, audit: JobRetryAudit) => Promise<RetryResult>): Promise<void> {
  const { DATABASE_URL } = config();
  const prisma = createPrismaClient(DATABASE_URL, { max: 1 });
  try {
    await withFailedJobs(async (jobs) => {
      await prisma.$queryRaw`SELECT 1`.catch((error: unknown) => {
        throw new PayorchError('DATABASE_UNAVAILABLE', `cannot reach PostgreSQL at DATABASE_URL (${reasonOf(error)}); nothing was done`);
      });
      const admin = new AdminService(prisma, operator());
      const result = await retry(jobs, (queue, job) => admin.auditJobRetry(queue, job));
      print(result);
      reportRetries(result);
    });
  } finally {
    await prisma.$disconnect();
  }
}

function reportRetries(result: RetryResult): void {
  const unaudited = result.jobs.filter((job) => job.audit === 'failed');
  const whose = (tenantId: string | undefined) => (tenantId === undefined ? 'no tenant: platform audit log' : `tenant ${tenantId}`);
  const named = unaudited.map((job) => `job ${job.id} (${job.name}, ${whose(job.tenantId)}: ${job.auditError})`);
  failUnlessDone(
    unaudited.length ? `retried, but NOT in the audit log: ${named.join('; ')}; this output is their only record` : undefined,
    result.stopped ? { code: 'RETRY_STOPPED', why: result.stopped } : undefined,
  );
}

/**
 * Fails a `secrets rewrap` that did not end as it should: AUDIT_FAILED when an audit row could not be written — a
 * batch's `secrets.rewrap.batch` row (the run stopped there: that batch re-sealed nothing, what it re-sealed before is
 * kept with its rows) or the run's summary row — else REWRAP_STOPPED when it stopped before the end for another cause (a
 * secret it cannot open, the database lost midway).
 */
function reportRewrap(result: RewrapResult): void {
  const summary =
    result.audit === 'failed'
      ? `re-sealed ${result.rewrapped} secret(s) under key ${result.activeKeyId}, each recorded by the secrets.rewrap.batch row committed with it, but the run's secrets.rewrap row is NOT in the platform audit log (${result.auditError}); this output is its only record`
      : undefined;
  if (result.stopped === undefined) return failUnlessDone(summary, undefined);
  const notResealed = `stopped at ${result.stopped}; that secret and those after it were not re-sealed`;
  const keepKeys = 'keep their keys in PAYORCH_PREVIOUS_MASTER_KEYS until a run ends without stopping';
  if (result.stoppedCode === 'AUDIT_FAILED') {
    const kept = `the ${result.rewrapped} secret(s) re-sealed before it are kept, each recorded by the secrets.rewrap.batch row committed with it`;
    const batch = `${notResealed}, and ${kept}: ${keepKeys}`;
    throw new PayorchError('AUDIT_FAILED', summary === undefined ? batch : `${batch}. ${summary}`);
  }
  failUnlessDone(summary, { code: 'REWRAP_STOPPED', why: `${notResealed}: ${keepKeys}` });
}

/**
 * Fails a command whose result is printed: AUDIT_FAILED when a change it made is in no audit log (`unaudited` names
 * it), else `stopped.code` when it stopped before the end. Both exit 1.
 */
function failUnlessDone(unaudited: string | undefined, stopped: { code: string; why: string } | undefined): void {
  const problems = [unaudited, stopped?.why].filter((p): p is string => p !== undefined);
  if (unaudited !== undefined) throw new PayorchError('AUDIT_FAILED', problems.join('. '));
  if (stopped) throw new PayorchError(stopped.code, stopped.why);
}

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive whole number');
  return n;
};

/** At most what `GET /v1/audit-log` pages (200); 50 unless told. */
const AUDIT_PAGE_MAX = 200;
const auditLimit = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > AUDIT_PAGE_MAX) throw new InvalidArgumentError(`must be a whole number from 1 to ${AUDIT_PAGE_MAX}`);
  return n;
};
const auditAction = (v: string) => {
  if (!/^[a-z0-9_.:-]{1,100}$/i.test(v))
    throw new InvalidArgumentError('must be an action such as secrets.rewrap or job.retry (letters, digits and _ . : - only)');
  return v;
};
const since = (v: string) => {
  if (!isoInstant().safeParse(v).success) throw new InvalidArgumentError('must be an ISO 8601 date-time with its offset, e.g. 2026-12-01T00:00:00Z');
  return new Date(v);
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

const queueName = (v: string): QueueName => {
  if (!isQueueName(v)) throw new InvalidArgumentError(`no such queue; one of ${QUEUE_NAMES.join(', ')}`);
  return v;
};
/** How many failed jobs `jobs failed` prints unless told (the newest first; `failed` says how many there are in all). */
const FAILED_JOBS_LIMIT = 20;

const jobs = program
  .command('jobs')
  .description('BullMQ jobs that used up their attempts (payorch_queue_jobs{state="failed"}); every job resumes from its rows, so a retry is safe');
jobs
  .command('failed')
  .description("a queue's failed jobs, newest first: id, name, failedReason, attemptsMade, finishedOn, tenantId (no other job data)")
  .requiredOption('--queue <name>', `one of ${QUEUE_NAMES.join(', ')}`, queueName)
  .option('--limit <n>', 'how many', positiveInt, FAILED_JOBS_LIMIT)
  .action((o: { queue: QueueName; limit: number }) => withFailedJobs(async (j) => print(await j.list(o.queue, o.limit))));
jobs
  .command('retry')
  .description(
    "move failed jobs back to waiting, their attempts counted afresh, once the cause is fixed; each in its tenant's audit log, or the platform's for a job of no tenant (job.retry); prints how many and which",
  )
  .requiredOption('--queue <name>', `one of ${QUEUE_NAMES.join(', ')}`, queueName)
  .addOption(new Option('--id <jobId>', 'one failed job').conflicts('all'))
  .addOption(new Option('--all', 'every job failed at the start of the command'))
  .action((o: { queue: QueueName; id?: string; all?: boolean }, command: Command) => {
    if (o.id === undefined && !o.all) command.error('error: one of --id <jobId> or --all is required');
    return retryJobs((j, audit) => (o.id === undefined ? j.retryAll(o.queue, audit) : j.retry(o.queue, o.id, audit)));
  });

program
  .command('secrets')
  .description('secrets at rest')
  .command('rewrap')
  .description(
    're-seal every secret under the active PAYORCH_MASTER_KEY (after a key rotation), in batches; audited in the platform audit log (each batch with its secrets.rewrap.batch row, then the secrets.rewrap summary: counts and key ids)',
  )
  .action(() =>
    run((a) => {
      const { PAYORCH_MASTER_KEY, PAYORCH_PREVIOUS_MASTER_KEYS } = config();
      if (!PAYORCH_MASTER_KEY) throw new PayorchError('CONFIG', 'PAYORCH_MASTER_KEY is not set');
      return a.rewrapSecrets(SecretBox.fromConfig(PAYORCH_MASTER_KEY, PAYORCH_PREVIOUS_MASTER_KEYS));
    }, reportRewrap),
  );

program
  .command('audit')
  .description('audit logs (read only)')
  .command('list')
  .description(
    "an audit log, newest first: the platform's (--platform: the operator's actions that concern no tenant, which no tenant sees) or a tenant's; prints {data, nextCursor}",
  )
  .addOption(new Option('--platform', 'the platform audit log (the rows of no tenant)').conflicts('tenant'))
  .addOption(new Option('--tenant <id>', "a tenant's audit log (what its GET /v1/audit-log shows)"))
  .option('--limit <n>', `how many (at most ${AUDIT_PAGE_MAX})`, auditLimit, 50)
  .option('--action <action>', 'only this action, e.g. secrets.rewrap, job.retry', auditAction)
  .option('--since <instant>', 'only rows at or after this instant (ISO 8601, e.g. 2026-12-01T00:00:00Z)', since)
  .option('--cursor <cursor>', "the next page: the previous page's nextCursor")
  .action((o: { platform?: boolean; tenant?: string; limit: number; action?: string; since?: Date; cursor?: string }, command: Command) => {
    if (!o.platform && o.tenant === undefined) command.error('error: one of --platform or --tenant <id> is required');
    return run((a) =>
      a.listAuditLog(o.platform ? 'platform' : { tenantId: o.tenant! }, { limit: o.limit, action: o.action, since: o.since, cursor: o.cursor }),
    );
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  const code = error instanceof PayorchError ? `${error.code}: ` : '';
  process.stderr.write(`error: ${code}${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
