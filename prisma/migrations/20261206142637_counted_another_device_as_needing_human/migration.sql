-- payorch_unknown_outcome_counts (migration added_unknown_outcome_counts): an UNKNOWN terminal operation also needs a
-- person once recovery met another device, not only once its budget is spent. Recovery asks only the device a command
-- was sent to; when the terminal's driver reaches another one (the terminal was re-pointed while the operation was in
-- doubt), every attempt is inconclusive until it is pointed back, so the operation sat UNKNOWN for the whole budget
-- (RECOVERY_MAX_ATTEMPTS with backoff: hours) before this gauge counted it. The first such attempt now flags it
-- (libs/operations recovery.ts → flagForHuman with cause `another_device`: its `recovery_exhausted` step carries
-- data.cause = 'another_device', written once), and this counts the UNKNOWN operations that have that step, whatever
-- their attempts. Recovery still asks them at its normal pace: one recovered after the terminal is pointed back is no
-- longer UNKNOWN, and no longer counted.
--
-- Same index-bound reads as before: an UNKNOWN operation's steps are read through ("tenantId", "operationId", "seq").
CREATE OR REPLACE FUNCTION payorch_unknown_outcome_counts(p_recovery_max_attempts int, p_wallet_human_codes text[])
  RETURNS TABLE ("kind" text, "unknown" int8, "needingHuman" int8, "oldestSeconds" float8)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT 'operation'::text, count(*), count(*) FILTER (WHERE u."recoveryAttempts" >= p_recovery_max_attempts OR u."anotherDevice"),
               COALESCE(GREATEST(EXTRACT(EPOCH FROM now() - min(u."since"))::float8, 0), 0)
          FROM (SELECT o."recoveryAttempts",
                       COALESCE((SELECT min(e."createdAt") FROM "OperationEvent" e
                                  WHERE e."tenantId" = o."tenantId" AND e."operationId" = o."id" AND e."toState" = 'UNKNOWN'),
                                o."createdAt") AS "since",
                       EXISTS (SELECT 1 FROM "OperationEvent" f
                                WHERE f."tenantId" = o."tenantId" AND f."operationId" = o."id" AND f."kind" = 'recovery_exhausted'
                                  AND f."data"->>'cause' = 'another_device') AS "anotherDevice"
                  FROM "TerminalOperation" o WHERE o."state" = 'UNKNOWN') u
        UNION ALL
        SELECT 'wallet_payment', count(*), count(*) FILTER (WHERE w."error"->>'code' = ANY (p_wallet_human_codes)),
               COALESCE(GREATEST(EXTRACT(EPOCH FROM now() - min(w."createdAt"))::float8, 0), 0)
          FROM "WalletPayment" w WHERE w."state" = 'UNKNOWN'
        UNION ALL
        SELECT 'wallet_operation', count(*), count(*) FILTER (WHERE p."error"->>'code' = ANY (p_wallet_human_codes)),
               COALESCE(GREATEST(EXTRACT(EPOCH FROM now() - min(COALESCE(p."sentAt", p."createdAt")))::float8, 0), 0)
          FROM "WalletPaymentOperation" p WHERE p."state" = 'UNKNOWN' $$;
