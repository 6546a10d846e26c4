-- A person's verdict on a wallet payment (POST /v1/wallet-payments/{id}/resolve) or on one of its operations
-- (POST …/operations/{operationId}/resolve), on the row itself: `{by: "human", actor: {type, id}, note, billNumber, at}`,
-- written by the compare-and-set that applies the verdict (libs/wallet-payments transition.ts). Null: no person decided
-- (Assist's answer, or the resolution job reading it). Before, the verdict was only in the audit log and the event, and
-- GET could not tell a person's `approved` from Assist's.

-- AlterTable
ALTER TABLE "WalletPayment" ADD COLUMN     "resolution" JSONB;

-- AlterTable
ALTER TABLE "WalletPaymentOperation" ADD COLUMN     "resolution" JSONB;

-- Verdicts given before this migration: their audit rows (written in the verdict's transaction) hold the actor, the
-- note (masked when it was stored) and the billnumber; `at` is the row's completedAt, the verdict's instant.
UPDATE "WalletPayment" AS p
SET "resolution" = jsonb_build_object(
  'by', 'human',
  'actor', jsonb_build_object('type', a."actorType", 'id', a."actorId"),
  'note', a."details"->'note',
  'billNumber', a."details"->'billNumber',
  'at', to_char(p."completedAt" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
FROM (
  SELECT DISTINCT ON ("tenantId", "resourceId") "tenantId", "resourceId", "actorType", "actorId", "details"
  FROM "AuditLog"
  WHERE "action" = 'wallet_payment.resolve' AND "resourceType" = 'wallet_payment'
  ORDER BY "tenantId", "resourceId", "createdAt"
) AS a
WHERE a."tenantId" = p."tenantId" AND a."resourceId" = p."id"::text AND p."resolution" IS NULL;

UPDATE "WalletPaymentOperation" AS o
SET "resolution" = jsonb_build_object(
  'by', 'human',
  'actor', jsonb_build_object('type', a."actorType", 'id', a."actorId"),
  'note', a."details"->'note',
  'billNumber', a."details"->'billNumber',
  'at', to_char(o."completedAt" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
FROM (
  SELECT DISTINCT ON ("tenantId", "details"->>'operationId') "tenantId", "resourceId", "actorType", "actorId", "details"
  FROM "AuditLog"
  WHERE "action" = 'wallet_payment.resolve_operation' AND "resourceType" = 'wallet_payment'
  ORDER BY "tenantId", "details"->>'operationId', "createdAt"
) AS a
WHERE a."tenantId" = o."tenantId" AND a."details"->>'operationId' = o."id"::text AND a."resourceId" = o."paymentId"::text
  AND o."resolution" IS NULL;
