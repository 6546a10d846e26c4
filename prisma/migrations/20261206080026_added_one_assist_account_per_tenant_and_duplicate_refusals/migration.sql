-- Assist's OrderNumber namespace is the Assist merchant account (server + Merchant_ID), not our settings row:
-- WalletPayment's @@unique([merchantId, orderNumber]) is per row, so two rows of one tenant for one account let an
-- order number be used twice, and Assist's answer about the first payment's order was taken as the second
-- payment's outcome (approved, no money moved). From now on a tenant has at most one row per account.

-- The account a row pays through: the server URL's origin (scheme and host lower-cased, a trailing dot of the host
-- and the default port dropped, the path ignored) and the Merchant_ID without leading zeros. The gateway stores
-- serverUrl already canonical (WHATWG URL: punycode host, canonical IPv4); this also folds older spellings.
CREATE FUNCTION payorch_assist_account(p_server_url text, p_merchant_id text) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS $$
    SELECT regexp_replace(regexp_replace(regexp_replace(
             lower(coalesce(substring(btrim(p_server_url) FROM '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*'), btrim(p_server_url))),
             '\.(:[0-9]+)?$', '\1'),
             '^(https://.*):443$', '\1'),
             '^(http://.*):80$', '\1')
      || '#' || coalesce(nullif(ltrim(btrim(p_merchant_id), '0'), ''), '0')
  $$;

-- AlterTable
ALTER TABLE "AssistMerchant" ADD COLUMN     "duplicateOfId" UUID;

-- AlterTable
ALTER TABLE "WalletPayment" ADD COLUMN     "refusedAsDuplicate" BOOLEAN NOT NULL DEFAULT false;

-- Rows that already duplicate an older row of the same tenant and account are KEPT (their payments reference them,
-- ON DELETE RESTRICT, and their captures, refunds and resolution need the credentials) but MARKED with the row kept
-- (the oldest): the gateway refuses new payments through them (409 ASSIST_MERCHANT_DUPLICATE) and refuses an order
-- number any payment of the account already used; a PATCH that gives one an account of its own clears the mark.
-- Refusing the migration instead would leave the operator nothing to do: such rows can be neither deleted (their
-- payments) nor merged (two payments may share an order number, the very case this closes).
UPDATE "AssistMerchant" AS d
SET "duplicateOfId" = k."keep"
FROM (
  SELECT "id",
         first_value("id") OVER (PARTITION BY "tenantId", payorch_assist_account("serverUrl", "merchantId") ORDER BY "createdAt", "id") AS "keep"
  FROM "AssistMerchant"
) AS k
WHERE d."id" = k."id" AND k."id" <> k."keep";

DO $$
DECLARE
  marked int;
BEGIN
  SELECT count(*) INTO marked FROM "AssistMerchant" WHERE "duplicateOfId" IS NOT NULL;
  IF marked > 0 THEN
    RAISE NOTICE '% AssistMerchant row(s) duplicate an older row of the same tenant and Assist account: kept for their payments, closed to new ones (see "duplicateOfId", docs/wallet-payments.md)', marked;
  END IF;
END
$$;

-- One row per tenant and account (the marked duplicates aside). A concurrent second create loses here (P2002,
-- answered 409 ASSIST_MERCHANT_DUPLICATE).
CREATE UNIQUE INDEX "AssistMerchant_tenantId_account_key"
  ON "AssistMerchant"("tenantId", payorch_assist_account("serverUrl", "merchantId")) WHERE "duplicateOfId" IS NULL;
