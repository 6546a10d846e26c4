import type { Database } from '@payorch/db';

const ID_SPACE = 999_999;

/**
 * Command ids a device connector reserves for one terminal at a time (TerminalCommandIds). Issue 19: one reservation
 * per command was a transaction and a round trip of its own on the deployment path's critical path, before the claim.
 */
export const COMMAND_ID_BLOCK = 50;

/**
 * Reserves `count` consecutive command ids of a terminal (Joinproto DF01, six digits, 000001…999999) from its counter
 * in PostgreSQL and returns the first and the last; a block that would pass 999999 starts again at 000001 (the ids
 * skipped before the wrap are never used). Reservations never overlap, so ids stay unique across connector restarts
 * and moves between connector instances: an id is not handed out again until the counter has gone once around.
 */
export async function reserveTerminalCommandIds(db: Database, tenantId: string, terminalId: string, count: number): Promise<{ first: number; last: number }> {
  if (!Number.isInteger(count) || count < 1 || count > ID_SPACE) throw new RangeError(`cannot reserve ${count} command ids`);
  // One pipelined round trip on the bare driver (BEGIN, tenant scope, UPDATE and COMMIT in one write).
  const rows = await db.withTenantSql(
    tenantId,
    (tx) =>
      tx.$queryRaw<{ last: number }[]>`
      UPDATE "Terminal" SET "protocolSequence" =
        CASE WHEN "protocolSequence" + ${count}::int > ${ID_SPACE}::int THEN ${count}::int ELSE "protocolSequence" + ${count}::int END
      WHERE "id" = ${terminalId}::uuid
      RETURNING "protocolSequence" AS last`,
    { pipelineCommit: true },
  );
  const last = rows[0]?.last;
  if (last === undefined) throw new Error(`terminal ${terminalId} not found for tenant ${tenantId}`);
  return { first: last - count + 1, last };
}

const format = (id: number) => String(id).padStart(6, '0');

/**
 * One terminal's command ids for one driver (the device connector's, per terminal session): reserved `block` at a
 * time, handed out in order; reservations are made one at a time, so concurrent calls share one. The ids of a block a
 * driver does not use up (it closed, the connector stopped) are never used: uniqueness holds, and the counter goes
 * around a little sooner.
 */
export function terminalCommandIds(db: Database, tenantId: string, terminalId: string, block = COMMAND_ID_BLOCK): () => Promise<string> {
  let next = 0;
  let last = -1;
  let reserving: Promise<void> | undefined;
  const take = async (): Promise<string> => {
    while (next > last) {
      reserving ??= reserveTerminalCommandIds(db, tenantId, terminalId, block)
        .then((ids) => {
          next = ids.first;
          last = ids.last;
        })
        .finally(() => (reserving = undefined));
      await reserving;
    }
    return format(next++);
  };
  return take;
}
