import type { Database } from '@payorch/db';

const ID_SPACE = 999_999;

/**
 * The next command id of a terminal (Joinproto DF01, six digits, 000001…999999 then wrapping), from a
 * per-terminal counter in PostgreSQL. Ids survive connector restarts and moves between connector
 * instances, so an id is not handed out again until a million later commands — long after any answer
 * to it could still arrive (the session also skips ids it still holds in doubt).
 */
export async function nextTerminalCommandId(db: Database, tenantId: string, terminalId: string): Promise<string> {
  // On the deployment path's critical path (before the refs are stored): one pipelined round trip on the bare
  // driver (BEGIN, tenant scope, UPDATE and COMMIT in one write) instead of a Prisma interactive transaction's four.
  const rows = await db.withTenantSql(
    tenantId,
    (tx) =>
      tx.$queryRaw<{ seq: number }[]>`
      UPDATE "Terminal" SET "protocolSequence" = ("protocolSequence" % ${ID_SPACE}) + 1
      WHERE "id" = ${terminalId}::uuid
      RETURNING "protocolSequence" AS seq`,
    { pipelineCommit: true },
  );
  const seq = rows[0]?.seq;
  if (seq === undefined) throw new Error(`terminal ${terminalId} not found for tenant ${tenantId}`);
  return String(seq).padStart(6, '0');
}
