-- The wallet sweep (apps/settlement-worker wallet-resolution.service.ts) took the 500 open payments / operations with the
-- oldest "updatedAt". A payment whose resolution job is waiting out a long backoff (Assist down for hours), or whose job
-- writes nothing, keeps its "updatedAt", so with 500 of them across all tenants every pass returned only those: the
-- payments of newer lost jobs (Redis flushed, attempts run out) were never re-enqueued, and the ones left to a person
-- (ORDER_NOT_PROVEN, OPERATION_NOT_PROVEN, answers failing their checks) held their places for good.
--
-- Now each pass records when it took a payment ("sweptAt", on the payment and on its open operations), and takes the
-- never-taken first, then the least recently taken: a payment just taken goes behind every other open one, so each open
-- payment is taken within ceil(open / p_limit) passes (plus the ones that newly open meanwhile), whatever the others do.
-- "sweptAt" is bookkeeping, not a state: written only by payorch_mark_wallet_payments_swept, which the worker calls
-- for the payments whose job it made sure of; it never touches "updatedAt" (the horizon, and what a resolution writes).

-- AlterTable
ALTER TABLE "WalletPayment" ADD COLUMN     "sweptAt" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "WalletPaymentOperation" ADD COLUMN     "sweptAt" TIMESTAMPTZ(3);

-- Index-bound: each side walks its partial index in the scan's order and stops at p_limit rows (the horizon on
-- "updatedAt" is checked on the index entries; only rows changed within it are skipped). Build time on a large table:
-- this takes a write lock for the build; build them CONCURRENTLY by hand first if the tables are large (the statements
-- below are then no-ops).
CREATE INDEX IF NOT EXISTS "WalletPayment_open_by_swept_at_idx" ON "WalletPayment" ("sweptAt" ASC NULLS FIRST, "updatedAt")
  WHERE "state" IN ('PENDING', 'PROCESSING', 'REQUIRES_ACTION', 'UNKNOWN');
CREATE INDEX IF NOT EXISTS "WalletPaymentOperation_open_by_swept_at_idx" ON "WalletPaymentOperation" ("sweptAt" ASC NULLS FIRST, "updatedAt")
  WHERE "state" IN ('PENDING', 'UNKNOWN');

-- Open payments (PENDING, PROCESSING, REQUIRES_ACTION, UNKNOWN) and payments with an open operation (PENDING, UNKNOWN),
-- unchanged for p_older_than: never taken first, then by when last taken, the oldest change first among equals. A
-- payment found on both sides is returned once, in its earlier place. Same signature, owner and grants as before.
CREATE OR REPLACE FUNCTION payorch_unresolved_wallet_payments(p_older_than interval, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT t."id", t."tenantId" FROM (
          (SELECT w."id", w."tenantId", w."sweptAt", w."updatedAt" FROM "WalletPayment" w
            WHERE w."state" IN ('PENDING', 'PROCESSING', 'REQUIRES_ACTION', 'UNKNOWN') AND w."updatedAt" < now() - p_older_than
            ORDER BY w."sweptAt" ASC NULLS FIRST, w."updatedAt" LIMIT p_limit)
          UNION ALL
          (SELECT o."paymentId", o."tenantId", o."sweptAt", o."updatedAt" FROM "WalletPaymentOperation" o
            WHERE o."state" IN ('PENDING', 'UNKNOWN') AND o."updatedAt" < now() - p_older_than
            ORDER BY o."sweptAt" ASC NULLS FIRST, o."updatedAt" LIMIT p_limit)
        ) t
        GROUP BY t."id", t."tenantId"
        ORDER BY min(COALESCE(t."sweptAt", '-infinity')), min(t."updatedAt"), t."id" LIMIT p_limit $$;

-- The payments a pass took (their jobs made sure of): taken now, they go behind every other open payment. It never
-- waits for a row lock (SKIP LOCKED), so it cannot deadlock with an owner's write (a settlement locks the operation,
-- then its payment): a row being written right now keeps its old "sweptAt" and simply comes early next pass.
CREATE FUNCTION payorch_mark_wallet_payments_swept(p_ids uuid[])
  RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public
  AS $$ UPDATE "WalletPayment" SET "sweptAt" = now()
         WHERE "id" IN (SELECT "id" FROM "WalletPayment" WHERE "id" = ANY (p_ids) FOR UPDATE SKIP LOCKED);
        UPDATE "WalletPaymentOperation" SET "sweptAt" = now()
         WHERE "id" IN (SELECT "id" FROM "WalletPaymentOperation" WHERE "paymentId" = ANY (p_ids) AND "state" IN ('PENDING', 'UNKNOWN')
                          FOR UPDATE SKIP LOCKED); $$;
REVOKE ALL ON FUNCTION payorch_mark_wallet_payments_swept(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_mark_wallet_payments_swept(uuid[]) TO payorch_app;
