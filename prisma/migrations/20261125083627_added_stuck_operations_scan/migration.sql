-- Cross-tenant scans for the worker's background jobs (recovery, webhook sweep). They return ids
-- only; every read or write of the rows themselves then happens inside withTenant (RLS).

-- Operations left SENT / IN_PROGRESS longer than a horizon (their executor died or lost the link):
-- the recovery job moves them to UNKNOWN through the state machine.
CREATE FUNCTION payorch_stuck_operations(p_older_than interval, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT o."id", o."tenantId" FROM "TerminalOperation" o
        WHERE o."state" IN ('SENT', 'IN_PROGRESS') AND o."updatedAt" < now() - p_older_than
        ORDER BY o."updatedAt" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_stuck_operations(interval, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_stuck_operations(interval, int) TO payorch_app;

-- UNKNOWN operations still within their recovery budget (recoveryAttempts < p_max_attempts); the
-- exhausted ones are left for a human (POST /v1/operations/{id}/resolve) and not returned again.
CREATE FUNCTION payorch_recoverable_operations(p_older_than interval, p_max_attempts int, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT o."id", o."tenantId" FROM "TerminalOperation" o
        WHERE o."state" = 'UNKNOWN' AND o."recoveryAttempts" < p_max_attempts AND o."updatedAt" < now() - p_older_than
        ORDER BY o."updatedAt" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_recoverable_operations(interval, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_recoverable_operations(interval, int, int) TO payorch_app;

-- Domain events newer than p_after for which some enabled endpoint of the tenant, created no later
-- than the event and subscribed to its type (or '*'), has no WebhookDelivery row yet: the webhook
-- sweep enqueues their fan-out (nothing is lost while the worker or Redis pub/sub was away).
CREATE FUNCTION payorch_events_pending_fanout(p_after timestamptz, p_limit int)
  RETURNS TABLE ("id" uuid, "tenantId" uuid, "createdAt" timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT e."id", e."tenantId", e."createdAt" FROM "DomainEvent" e
        WHERE e."createdAt" > p_after
          AND EXISTS (
            SELECT 1 FROM "WebhookEndpoint" w
             WHERE w."tenantId" = e."tenantId" AND w."enabled" AND w."createdAt" <= e."createdAt"
               AND (e."type" = ANY (w."eventTypes") OR '*' = ANY (w."eventTypes"))
               AND NOT EXISTS (SELECT 1 FROM "WebhookDelivery" d WHERE d."endpointId" = w."id" AND d."eventId" = e."id"))
        ORDER BY e."createdAt", e."id" LIMIT p_limit $$;
REVOKE ALL ON FUNCTION payorch_events_pending_fanout(timestamptz, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_events_pending_fanout(timestamptz, int) TO payorch_app;
