import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import os from 'node:os';
import { promisify } from 'node:util';

import { Client } from 'pg';

import { createPrismaClient, Database, type PrismaClient } from '@payorch/db';
import { SecretBox } from '@payorch/domain';
import { openTerminalCredentials, sealTerminalCredentials } from '@payorch/drivers';
import { createTestDatabase, REPO_ROOT, type TestDatabase, tsEntryArgs, waitFor } from '@payorch/testing';
import { openMerchantSecrets, sealMerchantSecrets } from '@payorch/wallet-payments';

import { AdminService, type AuditLogEntry, type RewrapResult } from './admin.service';

const run = promisify(execFile);

const masterKey = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;
const merchantSecrets = { login: 'shop', password: 'assist-password', salt: 'assist-salt', privateKeyPem: null, assistPublicKeyPem: null };

/**
 * The operator CLI's audit trail: every command that changes something writes one row, in the log of the tenant it
 * concerns or in the platform audit log (rows of no tenant) when it concerns none; a row that cannot be written fails
 * the command with AUDIT_FAILED; `audit list` reads the logs.
 */
describe(`${AdminService.name} audit trail`, () => {
  let testDb: TestDatabase;
  /** The owner connection, as the CLI's (DATABASE_URL). */
  let owner: PrismaClient;
  /** The services' connection (payorch_app, under row-level security): what `GET /v1/audit-log` reads. */
  let app: Database;
  let admin: AdminService;
  let tenantId: string;
  let storeId: string;
  const k1 = masterKey('k1');
  const k2 = masterKey('k2');
  const operator = `${os.userInfo().username}@${os.hostname()}`;

  /** The CLI's environment: this test's database (`env` on top: undefined unsets). */
  function cliEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
    const merged = { ...process.env, DATABASE_URL: testDb.adminUrl, REDIS_URL: undefined, ...env };
    return Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv;
  }

  /** The CLI as an operator runs it, on this test's database (`env` on top: undefined unsets); the exit code is in `code`. */
  async function cli(args: string[], env: Record<string, string | undefined> = {}) {
    try {
      const { stdout, stderr } = await run(process.execPath, tsEntryArgs('apps/api-gateway/src/admin/cli.ts', ...args), { cwd: REPO_ROOT, env: cliEnv(env) });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
      return { code, stdout, stderr };
    }
  }

  /** `tenantId`'s audit log as the tenant reads it (payorch_app, RLS), oldest first. */
  const tenantLog = (id: string) => app.withTenant(id, (tx) => tx.auditLog.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }));
  /** The platform audit log (no tenant), read as the operator reads it (owner connection). */
  const platformLog = () => owner.auditLog.findMany({ where: { tenantId: null }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });

  /** A terminal of the test's tenant whose credentials are sealed under `box` (none: null). */
  async function terminal(box: SecretBox | null, adminPassword = 'terminal-password', id: string = randomUUID()) {
    await owner.terminal.create({
      data: {
        id,
        tenantId,
        storeId,
        name: `t-${id.slice(0, 8)}`,
        protocol: 'JPAY',
        connection: { kind: 'tcp', host: '127.0.0.1', port: 1 },
        credentialsEncrypted: box ? sealTerminalCredentials(box, tenantId, id, { adminPassword }) : null,
      },
    });
    return id;
  }

  async function merchant(box: SecretBox) {
    const id = randomUUID();
    await owner.assistMerchant.create({
      data: {
        id,
        tenantId,
        merchantId: id.slice(0, 6),
        name: 'M',
        secretsEncrypted: sealMerchantSecrets(box, tenantId, id, merchantSecrets),
        serverUrl: 'https://assist.invalid',
      },
    });
    return id;
  }

  const envelopeOf = async (terminalId: string) => (await owner.terminal.findUniqueOrThrow({ where: { id: terminalId } })).credentialsEncrypted!;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    owner = createPrismaClient(testDb.adminUrl, { max: 2 });
    app = Database.connect(testDb.appUrl, 2);
    admin = new AdminService(owner, 'ops@test');
    tenantId = (await admin.createTenant('Chain A')).id;
    storeId = (await owner.store.create({ data: { tenantId, name: 'S', timeZone: 'UTC' } })).id;
  });

  afterAll(async () => {
    await app.close();
    await owner.$disconnect();
    await testDb.drop();
  });

  it('writes one row per change, in the log of the tenant it concerns, read under RLS as GET /v1/audit-log does; reads write none', async () => {
    const tenant = await admin.createTenant('Chain B');
    const key = await admin.createApiKey({ tenantId: tenant.id, name: 'first', scopes: ['read'] });
    const revoked = await admin.revokeApiKey(key.id);
    // Revoked once: again (by hand, or by a second run at the same time) keeps its time and writes no second row.
    expect(await Promise.all([admin.revokeApiKey(key.id), admin.revokeApiKey(key.id)])).toEqual([revoked, revoked]);
    const grant = await admin.createEgressGrant({ tenantId: tenant.id, channel: 'relay', cidr: '10.20.0.0/16', port: 443 });
    await admin.revokeEgressGrant(grant.id);
    await admin.setTenantStatus(tenant.id, 'DISABLED');
    await admin.setTenantStatus(tenant.id, 'ACTIVE');
    await admin.listTenants();
    await admin.listApiKeys(tenant.id);
    await admin.listEgressGrants(tenant.id);
    await admin.listAuditLog({ tenantId: tenant.id }, { limit: 10 });
    const platformBefore = await platformLog();

    const rows = await tenantLog(tenant.id);
    expect(rows.map((r) => [r.action, r.resourceType, r.resourceId])).toEqual([
      ['tenant.create', 'tenant', tenant.id],
      ['api_key.create', 'api_key', key.id],
      ['api_key.revoke', 'api_key', key.id],
      ['egress_grant.create', 'egress_grant', grant.id],
      ['egress_grant.delete', 'egress_grant', grant.id],
      ['tenant.disable', 'tenant', tenant.id],
      ['tenant.enable', 'tenant', tenant.id],
    ]);
    expect(rows.every((r) => r.actorType === 'admin' && r.actorId === 'ops@test' && r.tenantId === tenant.id)).toBe(true);
    expect(JSON.stringify(rows)).not.toContain(key.apiKey);
    expect(await platformLog()).toEqual(platformBefore);
  });

  describe('a change whose audit row cannot be written', () => {
    beforeAll(async () => {
      // The database refuses the operator's rows from now on (as any failed write: a constraint, a lost connection).
      await owner.$executeRawUnsafe(`ALTER TABLE "AuditLog" ADD CONSTRAINT "test_no_admin_rows" CHECK ("actorType" <> 'admin') NOT VALID`);
    });
    afterAll(async () => {
      await owner.$executeRawUnsafe(`ALTER TABLE "AuditLog" DROP CONSTRAINT "test_no_admin_rows"`);
    });

    const auditFailed = (action: string, log: string) => ({
      code: 'AUDIT_FAILED',
      message: expect.stringMatching(
        new RegExp(`^${action.replace('.', '\\.')} not done: its row could not be written to ${log} \\(.*test_no_admin_rows.*\\); nothing was changed$`),
      ),
    });

    it('is not made: each command fails with AUDIT_FAILED and nothing changed', async () => {
      const keysChanged: string[] = [];
      const sut = new AdminService(owner, 'ops@test', undefined, async (id) => void keysChanged.push(id));
      const log = `tenant ${tenantId}'s audit log`;
      const key = await owner.apiKey.create({
        data: { tenantId, name: 'k', prefix: randomBytes(6).toString('hex'), hash: randomBytes(32).toString('hex'), scopes: ['read'] },
      });
      const grant = await owner.egressGrant.create({ data: { tenantId, channel: 'RELAY', cidr: '10.30.0.0/16', createdBy: 'ops@test' } });
      const tenants = await owner.tenant.count();
      const keys = await owner.apiKey.count();

      await expect(sut.createTenant('Chain C')).rejects.toMatchObject(auditFailed('tenant.create', "tenant [0-9a-f-]{36}'s audit log"));
      expect(await owner.tenant.count()).toBe(tenants);

      await expect(sut.createApiKey({ tenantId, name: 'second' })).rejects.toMatchObject(auditFailed('api_key.create', log));
      expect(await owner.apiKey.count()).toBe(keys);

      await expect(sut.revokeApiKey(key.id)).rejects.toMatchObject(auditFailed('api_key.revoke', log));
      expect((await owner.apiKey.findUniqueOrThrow({ where: { id: key.id } })).revokedAt).toBeNull();
      expect(keysChanged).toEqual([]);

      await expect(sut.createEgressGrant({ tenantId, channel: 'webhook', cidr: '10.40.0.0/16' })).rejects.toMatchObject(
        auditFailed('egress_grant.create', log),
      );
      await expect(sut.revokeEgressGrant(grant.id)).rejects.toMatchObject(auditFailed('egress_grant.delete', log));
      expect((await owner.egressGrant.findMany({ where: { tenantId } })).map((g) => g.id)).toEqual([grant.id]);

      await expect(sut.setTenantStatus(tenantId, 'DISABLED')).rejects.toMatchObject(auditFailed('tenant.disable', log));
      expect((await owner.tenant.findUniqueOrThrow({ where: { id: tenantId } })).status).toBe('ACTIVE');

      await owner.egressGrant.delete({ where: { id: grant.id } });
      await owner.apiKey.delete({ where: { id: key.id } });
    });

    it('through the CLI: exits 1 with AUDIT_FAILED, and prints no key (none was made)', async () => {
      const keys = await owner.apiKey.count();
      const created = await cli(['apikey', 'create', '--tenant', tenantId, '--name', 'unaudited']);
      expect(created.code).toBe(1);
      expect(created.stdout).toBe('');
      expect(created.stderr).toMatch(
        new RegExp(
          `^error: AUDIT_FAILED: api_key\\.create not done: its row could not be written to tenant ${tenantId}'s audit log \\(.*\\); nothing was changed$`,
          'm',
        ),
      );
      expect(await owner.apiKey.count()).toBe(keys);
    }, 60_000);
  });

  describe('secrets rewrap', () => {
    beforeEach(async () => {
      await owner.terminal.deleteMany();
      await owner.assistMerchant.deleteMany();
      await owner.auditLog.deleteMany({ where: { tenantId: null } });
    });

    const rotated = () => ({ PAYORCH_MASTER_KEY: k2, PAYORCH_PREVIOUS_MASTER_KEYS: k1 });

    /** The details of a `secrets.rewrap.batch` row. */
    interface BatchDetails {
      run: string;
      batch: number;
      table: 'terminalCredentials' | 'assistMerchantSecrets';
      fromId: string;
      toId: string;
      checked: number;
      rewrapped: number;
      activeKeyId: string;
      fromKeyIds: string[];
    }
    const batchRows = async () => (await platformLog()).filter((r) => r.action === 'secrets.rewrap.batch').map((r) => r.details as unknown as BatchDetails);
    const summaryRows = async () => (await platformLog()).filter((r) => r.action === 'secrets.rewrap');
    /** Whether the re-seal of terminal `id` is recorded by one of `batches` (its id in the batch's range). */
    const covered = (id: string, batches: BatchDetails[]) => batches.some((b) => b.table === 'terminalCredentials' && b.fromId <= id && id <= b.toId);
    const total = (batches: BatchDetails[]) => batches.reduce((sum, b) => sum + b.rewrapped, 0);
    /** Ids whose position gives their order (the run's order: id order). */
    const orderedId = (n: number) => `${n.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;

    it('re-seals under the active key, each batch with its secrets.rewrap.batch row, then a secrets.rewrap summary row in the platform audit log: counts and key ids, no key material; no tenant sees them', async () => {
      const onK1 = await terminal(SecretBox.fromConfig(k1), 'password-on-k1');
      const onK2 = await terminal(SecretBox.fromConfig(k2));
      await terminal(null);
      const merchantId = await merchant(SecretBox.fromConfig(k1));
      const before = [await envelopeOf(onK1), (await owner.assistMerchant.findUniqueOrThrow({ where: { id: merchantId } })).secretsEncrypted];

      const rewrapped = await cli(['secrets', 'rewrap'], rotated());
      expect([rewrapped.code, rewrapped.stderr]).toEqual([0, '']);
      const counts = { rewrapped: 2, terminalCredentials: { checked: 2, rewrapped: 1 }, assistMerchantSecrets: { checked: 1, rewrapped: 1 } };
      expect(JSON.parse(rewrapped.stdout)).toEqual({ activeKeyId: 'k2', ...counts, audit: 'written' });
      const k2Box = SecretBox.fromConfig(k2);
      expect(openTerminalCredentials(k2Box, tenantId, onK1, await envelopeOf(onK1))).toEqual({ adminPassword: 'password-on-k1' });
      const merchantAfter = await owner.assistMerchant.findUniqueOrThrow({ where: { id: merchantId } });
      expect(openMerchantSecrets(k2Box, tenantId, merchantId, merchantAfter.secretsEncrypted)).toEqual(merchantSecrets);

      const rows = await platformLog();
      const row = (action: string, details: Record<string, unknown>) =>
        expect.objectContaining({ tenantId: null, actorType: 'admin', actorId: operator, action, resourceType: 'master_key', resourceId: 'k2', details });
      const run = (rows[0]!.details as { run: string }).run;
      const [first, last] = [onK1, onK2].sort();
      const batch = { run, activeKeyId: 'k2', fromKeyIds: ['k1'] };
      expect(rows).toEqual([
        row('secrets.rewrap.batch', { ...batch, batch: 1, table: 'terminalCredentials', fromId: first, toId: last, checked: 2, rewrapped: 1 }),
        row('secrets.rewrap.batch', { ...batch, batch: 2, table: 'assistMerchantSecrets', fromId: merchantId, toId: merchantId, checked: 1, rewrapped: 1 }),
        row('secrets.rewrap', { run, batches: 2, activeKeyId: 'k2', fromKeyIds: ['k1'], ...counts }),
      ]);
      expect(run).toMatch(/^[0-9a-f-]{36}$/);
      // Key ids only: no key, no envelope, no secret.
      const text = JSON.stringify(rows);
      for (const secret of [k1, k2, k1.slice(3), k2.slice(3), ...before, 'password-on-k1', merchantSecrets.password]) expect(text).not.toContain(secret);
      // No tenant sees it (row-level security), nor does the services' role under no tenant.
      expect(await tenantLog(tenantId)).not.toContainEqual(expect.objectContaining({ resourceType: 'master_key' }));
      expect(await app.prisma.auditLog.findMany({ where: { resourceType: 'master_key' } })).toEqual([]);

      // Nothing left on k1: a second run changes nothing, and records nothing.
      const again = await cli(['secrets', 'rewrap'], rotated());
      expect([again.code, JSON.parse(again.stdout)]).toEqual([
        0,
        { activeKeyId: 'k2', rewrapped: 0, terminalCredentials: { checked: 2, rewrapped: 0 }, assistMerchantSecrets: { checked: 1, rewrapped: 0 } },
      ]);
      expect(await platformLog()).toHaveLength(3);
    }, 60_000);

    it('stops at a secret it cannot open, keeps and audits what it re-sealed before (its batch up to there), and exits 1 REWRAP_STOPPED naming it', async () => {
      const first = await terminal(SecretBox.fromConfig(k1), 'p1', '10000000-0000-4000-8000-000000000000');
      // Sealed under a key the run does not have (retired too early).
      const unopenable = await terminal(SecretBox.fromConfig(masterKey('k0')), 'p2', '20000000-0000-4000-8000-000000000000');
      const after = await terminal(SecretBox.fromConfig(k1), 'p3', '30000000-0000-4000-8000-000000000000');
      await merchant(SecretBox.fromConfig(k1));

      const result = await cli(['secrets', 'rewrap'], rotated());
      expect(result.code).toBe(1);
      const stopped = `terminal ${unopenable}: SECRET_KEY_UNKNOWN: no master key with id "k0" is configured`;
      const counts = { rewrapped: 1, terminalCredentials: { checked: 2, rewrapped: 1 }, assistMerchantSecrets: { checked: 0, rewrapped: 0 } };
      expect(JSON.parse(result.stdout)).toEqual({ activeKeyId: 'k2', ...counts, stopped, stoppedCode: 'SECRET_KEY_UNKNOWN', audit: 'written' });
      expect(result.stderr).toContain(`error: REWRAP_STOPPED: stopped at ${stopped}; that secret and those after it were not re-sealed`);
      expect(await envelopeOf(first)).toMatch(/^pe1\.k2\./);
      expect(await envelopeOf(unopenable)).toMatch(/^pe1\.k0\./);
      expect(await envelopeOf(after)).toMatch(/^pe1\.k1\./);
      const run = expect.any(String);
      expect(await platformLog()).toEqual([
        expect.objectContaining({
          action: 'secrets.rewrap.batch',
          resourceId: 'k2',
          details: { run, batch: 1, table: 'terminalCredentials', fromId: first, toId: first, checked: 1, rewrapped: 1, activeKeyId: 'k2', fromKeyIds: ['k1'] },
        }),
        expect.objectContaining({
          action: 'secrets.rewrap',
          resourceId: 'k2',
          details: { run, batches: 1, activeKeyId: 'k2', fromKeyIds: ['k1'], ...counts, stopped },
        }),
      ]);
    }, 60_000);

    it('exits 1 with AUDIT_FAILED when its summary row cannot be written: the secrets stay re-sealed, each recorded by its batch row', async () => {
      const onK1 = await terminal(SecretBox.fromConfig(k1));
      await merchant(SecretBox.fromConfig(k1));
      await owner.$executeRawUnsafe(`ALTER TABLE "AuditLog" ADD CONSTRAINT "test_no_rewrap_rows" CHECK ("action" <> 'secrets.rewrap') NOT VALID`);
      try {
        const rewrapped = await cli(['secrets', 'rewrap'], rotated());
        expect(rewrapped.code).toBe(1);
        const result = JSON.parse(rewrapped.stdout) as RewrapResult;
        expect(result).toEqual({
          activeKeyId: 'k2',
          rewrapped: 2,
          terminalCredentials: { checked: 1, rewrapped: 1 },
          assistMerchantSecrets: { checked: 1, rewrapped: 1 },
          audit: 'failed',
          auditError: expect.stringContaining('test_no_rewrap_rows'),
        });
        expect(rewrapped.stderr).toContain(
          `error: AUDIT_FAILED: re-sealed 2 secret(s) under key k2, each recorded by the secrets.rewrap.batch row committed with it, but the run's secrets.rewrap row is NOT in the platform audit log (${result.auditError}); this output is its only record`,
        );
        expect(await envelopeOf(onK1)).toMatch(/^pe1\.k2\./);
        expect((await batchRows()).map((b) => [b.table, b.rewrapped])).toEqual([
          ['terminalCredentials', 1],
          ['assistMerchantSecrets', 1],
        ]);
        expect(await summaryRows()).toEqual([]);
      } finally {
        await owner.$executeRawUnsafe(`ALTER TABLE "AuditLog" DROP CONSTRAINT "test_no_rewrap_rows"`);
      }
    }, 60_000);

    it("exits 1 with AUDIT_FAILED when a batch's row cannot be written: that batch re-seals nothing, the run stops at its first secret, what it committed before stays, with its rows", async () => {
      // Batch 1: the terminal's secret; batch 2: both merchants' (another table), whose row the database refuses.
      const onK1 = await terminal(SecretBox.fromConfig(k1));
      const merchants = [await merchant(SecretBox.fromConfig(k1)), await merchant(SecretBox.fromConfig(k1))].sort();
      const merchantEnvelopes = async () =>
        (await owner.assistMerchant.findMany({ where: { id: { in: merchants } }, orderBy: { id: 'asc' } })).map((m) => m.secretsEncrypted);
      const before = await merchantEnvelopes();
      // As any failed write in its transaction would: a constraint, a lost connection.
      await owner.$executeRawUnsafe(
        `ALTER TABLE "AuditLog" ADD CONSTRAINT "test_no_second_batch" CHECK ("action" <> 'secrets.rewrap.batch' OR "details"->>'batch' <> '2') NOT VALID`,
      );
      try {
        const rewrapped = await cli(['secrets', 'rewrap'], rotated());
        expect(rewrapped.code).toBe(1);
        const result = JSON.parse(rewrapped.stdout) as RewrapResult;
        expect(result).toEqual({
          activeKeyId: 'k2',
          rewrapped: 1,
          terminalCredentials: { checked: 1, rewrapped: 1 },
          assistMerchantSecrets: { checked: 2, rewrapped: 0 },
          stopped: expect.stringMatching(
            new RegExp(`^assist merchant ${merchants[0]}: AUDIT_FAILED: secrets\\.rewrap\\.batch not done: .*test_no_second_batch.*; nothing was changed$`),
          ),
          stoppedCode: 'AUDIT_FAILED',
          audit: 'written',
        });
        // An audit row that cannot be written fails the command with AUDIT_FAILED (docs/security.md), saying where it stopped.
        expect(rewrapped.stderr).toBe(
          `error: AUDIT_FAILED: stopped at ${result.stopped}; that secret and those after it were not re-sealed, and the 1 secret(s) re-sealed before it are kept, each recorded by the secrets.rewrap.batch row committed with it: keep their keys in PAYORCH_PREVIOUS_MASTER_KEYS until a run ends without stopping\n`,
        );
        expect(await envelopeOf(onK1)).toMatch(/^pe1\.k2\./);
        expect(await merchantEnvelopes()).toEqual(before);
        expect(await batchRows()).toEqual([expect.objectContaining({ batch: 1, table: 'terminalCredentials', fromId: onK1, toId: onK1, rewrapped: 1 })]);
        expect(await summaryRows()).toEqual([
          expect.objectContaining({ details: expect.objectContaining({ batches: 1, rewrapped: 1, stopped: result.stopped }) }),
        ]);
      } finally {
        await owner.$executeRawUnsafe(`ALTER TABLE "AuditLog" DROP CONSTRAINT "test_no_second_batch"`);
      }
    }, 60_000);

    it('leaves no secret re-sealed without its row when the run is killed mid-batch; a re-run re-seals the rest, and the rows add up', async () => {
      // More secrets than one batch (100) holds, in a known order; the run is killed in its second batch.
      const ids = Array.from({ length: 150 }, (_, i) => orderedId(i + 1));
      const k1Box = SecretBox.fromConfig(k1);
      for (const id of ids) await terminal(k1Box, `p-${id}`, id);
      const onK2 = async () =>
        (await owner.terminal.findMany({ where: { id: { in: ids } }, select: { id: true, credentialsEncrypted: true }, orderBy: { id: 'asc' } }))
          .filter((t) => t.credentialsEncrypted!.startsWith('pe1.k2.'))
          .map((t) => t.id);

      // Another session holds terminal 120: the run waits there until it is killed.
      const holder = new Client({ connectionString: testDb.adminUrl });
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM "Terminal" WHERE "id" = $1 FOR UPDATE', [ids[119]]);
      const child = spawn(process.execPath, tsEntryArgs('apps/api-gateway/src/admin/cli.ts', 'secrets', 'rewrap'), {
        cwd: REPO_ROOT,
        env: cliEnv(rotated()),
        stdio: 'ignore',
      });
      const exited = once(child, 'exit');
      try {
        const waiting = await waitFor(
          async () =>
            (await owner.$queryRaw<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)[0]
              ?.pid,
          { timeoutMs: 30_000, what: 'the run waiting for terminal 120' },
        );
        child.kill('SIGKILL');
        await exited;
        // Its session dies with it (PostgreSQL ends it when it next reads the closed socket; here at once).
        await owner.$queryRaw`SELECT pg_terminate_backend(${waiting}::int)`;
        await waitFor(async () => (await owner.$queryRaw<unknown[]>`SELECT 1 FROM pg_stat_activity WHERE pid = ${waiting}::int`).length === 0, {
          what: "the killed run's session gone",
        });
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await holder.query('ROLLBACK');
        await holder.end();
      }

      // Every secret whose envelope changed is recorded by a row that committed with it; no summary: the run died.
      const resealed = await onK2();
      expect(resealed.length).toBeGreaterThan(0);
      expect(resealed.length).toBeLessThan(ids.length);
      const killed = await batchRows();
      expect(resealed.filter((id) => !covered(id, killed))).toEqual([]);
      expect(total(killed)).toBe(resealed.length);
      expect(await summaryRows()).toEqual([]);

      const again = await cli(['secrets', 'rewrap'], rotated());
      const rest = ids.length - resealed.length;
      expect([again.code, again.stderr, JSON.parse(again.stdout)]).toEqual([
        0,
        '',
        {
          activeKeyId: 'k2',
          rewrapped: rest,
          terminalCredentials: { checked: ids.length, rewrapped: rest },
          assistMerchantSecrets: { checked: 0, rewrapped: 0 },
          audit: 'written',
        },
      ]);
      expect(await onK2()).toEqual(ids);
      expect(openTerminalCredentials(SecretBox.fromConfig(k2), tenantId, ids[119]!, await envelopeOf(ids[119]!))).toEqual({ adminPassword: `p-${ids[119]}` });
      // Across both runs: every secret recorded once, and the re-run's summary is the sum of its own batches.
      const all = await batchRows();
      expect(ids.filter((id) => !covered(id, all))).toEqual([]);
      expect(total(all)).toBe(ids.length);
      const [summary] = await summaryRows();
      const { run, batches, rewrapped } = summary!.details as { run: string; batches: number; rewrapped: number };
      const ofRerun = all.filter((b) => b.run === run);
      expect([ofRerun.length, total(ofRerun)]).toEqual([batches, rewrapped]);
      expect(new Set(all.map((b) => b.run)).size).toBe(2);
    }, 90_000);

    it('never overwrites a secret the tenant changed while it ran: that one is left as written, and not counted', async () => {
      const k2Box = SecretBox.fromConfig(k2);
      const changed = await terminal(SecretBox.fromConfig(k1), 'old-password');
      // The tenant sets a new password (the gateway seals it under the active key) between the run's read and its write.
      let raced = false;
      const race = async () => {
        if (raced) return;
        raced = true;
        await owner.terminal.update({
          where: { id: changed },
          data: { credentialsEncrypted: sealTerminalCredentials(k2Box, tenantId, changed, { adminPassword: 'new-password' }) },
        });
      };
      const racing = owner.$extends({
        query: {
          terminal: {
            async update({ args, query }) {
              await race();
              return query(args);
            },
            async updateMany({ args, query }) {
              await race();
              return query(args);
            },
          },
        },
      }) as unknown as PrismaClient;

      const result = await new AdminService(racing, 'ops@test').rewrapSecrets(SecretBox.fromConfig(k2, [k1]));
      expect(raced).toBe(true);
      expect(openTerminalCredentials(k2Box, tenantId, changed, await envelopeOf(changed))).toEqual({ adminPassword: 'new-password' });
      expect(result).toEqual({
        activeKeyId: 'k2',
        rewrapped: 0,
        terminalCredentials: { checked: 1, rewrapped: 0 },
        assistMerchantSecrets: { checked: 0, rewrapped: 0 },
      });
      expect(await platformLog()).toEqual([]);
    });
  });

  describe('audit list', () => {
    const at = (time: string) => new Date(`2026-12-01T${time}Z`);
    /** Platform rows, oldest first; the last two at the same instant (ordered by id, newest first). */
    const platform = [
      { id: '00000000-0000-4000-8000-000000000001', action: 'job.retry', createdAt: at('10:00:00') },
      { id: '00000000-0000-4000-8000-000000000002', action: 'secrets.rewrap', createdAt: at('11:00:00') },
      { id: '00000000-0000-4000-8000-000000000003', action: 'job.retry', createdAt: at('12:00:00') },
      { id: '00000000-0000-4000-8000-000000000004', action: 'job.retry', createdAt: at('12:00:00') },
    ];
    const ids = (stdout: string) => (JSON.parse(stdout) as { data: AuditLogEntry[] }).data.map((e) => e.id);

    beforeAll(async () => {
      await owner.auditLog.deleteMany({ where: { tenantId: null } });
      await owner.auditLog.createMany({
        data: platform.map((r) => ({ ...r, tenantId: null, actorType: 'admin', actorId: 'ops@host', resourceType: 'job', resourceId: `job-${r.id.at(-1)}` })),
      });
      // A tenant's row, newer than all of them: never in the platform's log.
      await owner.auditLog.create({
        data: { tenantId, actorType: 'admin', actorId: 'ops@host', action: 'job.retry', resourceType: 'job', createdAt: at('13:00:00') },
      });
    });

    it('prints the platform audit log newest first, a bounded page at a time, filtered by action and since; no tenant row', async () => {
      const first = await cli(['audit', 'list', '--platform', '--limit', '3']);
      expect([first.code, first.stderr]).toEqual([0, '']);
      const page = JSON.parse(first.stdout) as { data: AuditLogEntry[]; nextCursor: string | null };
      expect(page.data.map((e) => e.id)).toEqual([platform[3]!.id, platform[2]!.id, platform[1]!.id]);
      expect(page.data[0]).toEqual({
        id: platform[3]!.id,
        createdAt: '2026-12-01T12:00:00.000Z',
        tenantId: null,
        actorType: 'admin',
        actorId: 'ops@host',
        action: 'job.retry',
        resourceType: 'job',
        resourceId: 'job-4',
        details: null,
        requestId: null,
      });
      expect(page.nextCursor).toEqual(expect.any(String));

      const next = await cli(['audit', 'list', '--platform', '--limit', '3', '--cursor', page.nextCursor!]);
      expect([next.code, JSON.parse(next.stdout)]).toEqual([0, { data: [expect.objectContaining({ id: platform[0]!.id })], nextCursor: null }]);

      const filtered = await cli(['audit', 'list', '--platform', '--action', 'job.retry', '--since', '2026-12-01T13:30:00+02:00']);
      expect([filtered.code, ids(filtered.stdout)]).toEqual([0, [platform[3]!.id, platform[2]!.id]]);

      // A tenant's log, by the same command.
      const ofTenant = await cli(['audit', 'list', '--tenant', tenantId, '--action', 'job.retry']);
      expect([ofTenant.code, JSON.parse(ofTenant.stdout)]).toEqual([
        0,
        { data: [expect.objectContaining({ tenantId, createdAt: '2026-12-01T13:00:00.000Z' })], nextCursor: null },
      ]);
    }, 60_000);

    it.each([
      [[], 'error: one of --platform or --tenant <id> is required'],
      [['--platform', '--tenant', randomUUID()], "error: option '--platform' cannot be used with option '--tenant <id>'"],
      [['--platform', '--limit', '0'], "error: option '--limit <n>' argument '0' is invalid. must be a whole number from 1 to 200"],
      [['--platform', '--limit', '201'], "error: option '--limit <n>' argument '201' is invalid. must be a whole number from 1 to 200"],
      [
        ['--platform', '--since', 'yesterday'],
        "error: option '--since <instant>' argument 'yesterday' is invalid. must be an ISO 8601 date-time with its offset",
      ],
      [['--platform', '--action', 'job retry'], "error: option '--action <action>' argument 'job retry' is invalid. must be an action such as"],
      [['--platform', '--cursor', 'not-a-cursor'], 'error: VALIDATION_FAILED: cursor: not a cursor returned by this API'],
      [['--tenant', 'chain-a'], 'error: VALIDATION_FAILED: tenant: must be a UUID'],
    ])(
      'refuses %j with a clear error and exit code 1',
      async (args, message) => {
        const refused = await cli(['audit', 'list', ...args]);
        expect(refused.code).toBe(1);
        expect(refused.stdout).toBe('');
        expect(refused.stderr).toContain(message);
      },
      60_000,
    );
  });
});
