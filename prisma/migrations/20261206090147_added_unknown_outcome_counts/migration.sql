-- Payments whose outcome is unknown, for the settlement worker's gauges (read when /metrics is scraped, a few seconds
-- cached: apps/settlement-worker/src/system/unknown-outcomes.ts; what to do about them: docs/runbooks/unknown-outcomes.md).
-- Like the other cross-tenant scans it is SECURITY DEFINER, but it returns no ids at all: per kind, how many rows are
-- UNKNOWN, how many of those wait for a person, and how long the oldest has been in doubt. No tenant data.
--
--   'operation'         TerminalOperation UNKNOWN. A person is needed once recovery gave up: "recoveryAttempts" >=
--                       p_recovery_max_attempts (the worker's RECOVERY_MAX_ATTEMPTS), the very test after which
--                       payorch_recoverable_operations stops returning it. Not the `recovery_exhausted` step: that is
--                       written only when a recover job of the worker finds the budget spent, and attempts the
--                       connector makes on reconnect (recoverTerminal) can spend it without one. In doubt since the
--                       step that made it UNKNOWN (its first OperationEvent with "toState" UNKNOWN): "updatedAt" moves
--                       with every recovery attempt and with the give-up.
--   'wallet_payment'    WalletPayment UNKNOWN. A person is needed when its error code is one of p_wallet_human_codes
--                       (ORDER_NOT_PROVEN, ORDER_MISMATCH: the resolution job keeps reading Assist and never adopts
--                       what it finds; docs/wallet-payments.md "Human resolution"). In doubt since it was created:
--                       nothing records when it became UNKNOWN (at its tokenpay call, or later after a 3-D Secure step)
--                       and "updatedAt" moves with every resolution attempt, which never stop, so the age is an upper
--                       bound (never reset by an attempt).
--   'wallet_operation'  WalletPaymentOperation (capture / cancel / refund) UNKNOWN; a person as for payments. In doubt
--                       since it was sent ("sentAt"; "createdAt" on rows without one).
--
-- Index-bound: its owner (superuser or BYPASSRLS, docs/runbooks/database.md) is not under row-level security here, so
-- "state" = 'UNKNOWN' is an index condition on each table's ("state", "updatedAt") index (under RLS it would not be:
-- docs/architecture.md), and an UNKNOWN operation's steps are read through ("tenantId", "operationId", "seq"). The
-- history of final rows is never read (apps/settlement-worker/src/system/unknown-outcomes.int-spec.ts).
CREATE FUNCTION payorch_unknown_outcome_counts(p_recovery_max_attempts int, p_wallet_human_codes text[])
  RETURNS TABLE ("kind" text, "unknown" int8, "needingHuman" int8, "oldestSeconds" float8)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT 'operation'::text, count(*), count(*) FILTER (WHERE u."recoveryAttempts" >= p_recovery_max_attempts),
               COALESCE(GREATEST(EXTRACT(EPOCH FROM now() - min(u."since"))::float8, 0), 0)
          FROM (SELECT o."recoveryAttempts",
                       COALESCE((SELECT min(e."createdAt") FROM "OperationEvent" e
                                  WHERE e."tenantId" = o."tenantId" AND e."operationId" = o."id" AND e."toState" = 'UNKNOWN'),
                                o."createdAt") AS "since"
                  FROM "TerminalOperation" o WHERE o."state" = 'UNKNOWN') u
        UNION ALL
        SELECT 'wallet_payment', count(*), count(*) FILTER (WHERE w."error"->>'code' = ANY (p_wallet_human_codes)),
               COALESCE(GREATEST(EXTRACT(EPOCH FROM now() - min(w."createdAt"))::float8, 0), 0)
          FROM "WalletPayment" w WHERE w."state" = 'UNKNOWN'
        UNION ALL
        SELECT 'wallet_operation', count(*), count(*) FILTER (WHERE p."error"->>'code' = ANY (p_wallet_human_codes)),
               COALESCE(GREATEST(EXTRACT(EPOCH FROM now() - min(COALESCE(p."sentAt", p."createdAt")))::float8, 0), 0)
          FROM "WalletPaymentOperation" p WHERE p."state" = 'UNKNOWN' $$;
REVOKE ALL ON FUNCTION payorch_unknown_outcome_counts(int, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_unknown_outcome_counts(int, text[]) TO payorch_app;
