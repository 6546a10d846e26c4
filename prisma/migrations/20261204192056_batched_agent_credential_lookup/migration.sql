-- The agents of several credential prefixes in one statement: the device connector looks up the
-- credentials of the upgrades that arrive together (a reconnect storm) in one round trip instead of one
-- each. Same rules as payorch_find_agent_by_credential, which it replaces (nothing calls that one any more,
-- so it is dropped: one SECURITY DEFINER lookup less): the unguessable public prefix only, active tenants
-- only; the caller verifies each hash. At most 1,000 prefixes per call.
CREATE FUNCTION payorch_find_agents_by_credentials(p_prefixes text[])
  RETURNS TABLE ("credentialPrefix" text, "id" uuid, "tenantId" uuid, "credentialHash" text, "status" "AgentStatus")
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$ SELECT a."credentialPrefix", a."id", a."tenantId", a."credentialHash", a."status"
        FROM "Agent" a JOIN "Tenant" t ON t."id" = a."tenantId"
        WHERE a."credentialPrefix" = ANY (p_prefixes[1:1000]) AND t."status" = 'ACTIVE' $$;
REVOKE ALL ON FUNCTION payorch_find_agents_by_credentials(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_find_agents_by_credentials(text[]) TO payorch_app;

DROP FUNCTION payorch_find_agent_by_credential(text);
