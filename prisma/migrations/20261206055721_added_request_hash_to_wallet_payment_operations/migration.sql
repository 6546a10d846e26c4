-- A capture / cancel stores the hash of its request (action, payment, body) beside its Idempotency-Key, as a
-- payment does: the same key with another action or amount is refused (409 IDEMPOTENCY_KEY_REUSED) even after the
-- gateway's 24 h idempotency record expired. Nullable: rows from before keep NULL and are compared by payment only.
-- AlterTable
ALTER TABLE "WalletPaymentOperation" ADD COLUMN     "requestHash" TEXT;
