import { Prisma } from './client';
import type { SqlClient } from './sql-transaction';

/**
 * The tables whose lifecycle column is written by a compare-and-set (each through its one owner), and the columns
 * the write returns: named, from the generated client's field list, so that a statement prepared on a connection
 * (SqlTransaction) keeps its result type when a migration adds a column.
 */
const LIFECYCLE = {
  Campaign: { column: 'state', type: 'CampaignState', columns: Prisma.CampaignScalarFieldEnum },
  CampaignTarget: { column: 'state', type: 'CampaignTargetState', columns: Prisma.CampaignTargetScalarFieldEnum },
  CampaignWave: { column: 'state', type: 'CampaignWaveState', columns: Prisma.CampaignWaveScalarFieldEnum },
  Settlement: { column: 'status', type: 'SettlementStatus', columns: Prisma.SettlementScalarFieldEnum },
  WalletPayment: { column: 'state', type: 'WalletPaymentState', columns: Prisma.WalletPaymentScalarFieldEnum },
  WalletPaymentOperation: { column: 'state', type: 'WalletOperationState', columns: Prisma.WalletPaymentOperationScalarFieldEnum },
} as const;

/** `t."a", t."b", …`: every scalar column of a lifecycle table, qualified by `alias`. */
export function lifecycleColumns(table: LifecycleTable, alias: string): Prisma.Sql {
  return Prisma.raw(
    Object.values(LIFECYCLE[table].columns)
      .map((column) => `${alias}."${column}"`)
      .join(', '),
  );
}

export type LifecycleTable = keyof typeof LIFECYCLE;

/**
 * The owners' one write (libs/settlement, libs/wallet-payments, libs/campaigns): `UPDATE <table> SET <sets> WHERE id = ? AND
 * <state> = ANY(from)` as one statement (in a Prisma transaction or a SqlTransaction), with the previous state read under `FOR UPDATE` in the same statement.
 * Returns the written row and the state it had, or undefined when the row was not in one of `from` (someone
 * else moved it first). `sets` refer to the row's columns unqualified (e.g. `"attempts" = "attempts" + 1`);
 * `"updatedAt"` is set here.
 */
export async function compareAndSetLifecycle<Row, S extends string>(
  tx: SqlClient,
  table: LifecycleTable,
  id: string,
  from: readonly S[],
  sets: readonly Prisma.Sql[],
): Promise<{ row: Row; previous: S } | undefined> {
  const { column, type } = LIFECYCLE[table];
  const t = Prisma.raw(`"${table}"`);
  const c = Prisma.raw(`"${column}"`);
  const rows = await tx.$queryRaw<(Row & { __previous: S })[]>`
    WITH previous AS (
      SELECT t."id", t.${c} FROM ${t} t
      WHERE t."id" = ${id}::uuid AND t.${c} = ANY(${[...from]}::${Prisma.raw(`"${type}"[]`)})
      FOR UPDATE OF t
    )
    UPDATE ${t} t SET ${Prisma.join([...sets, Prisma.sql`"updatedAt" = clock_timestamp()`], ', ')}
    FROM previous WHERE t."id" = previous."id"
    RETURNING ${lifecycleColumns(table, 't')}, previous.${c} AS "__previous"`;
  const written = rows[0];
  if (written === undefined) return undefined;
  const { __previous, ...row } = written;
  return { row: row as Row, previous: __previous };
}
