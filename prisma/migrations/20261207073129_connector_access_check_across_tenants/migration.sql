-- The device connector's access check of new tunnels, for the agents of any tenants in one statement (issue 19: a
-- reconnect storm's set-ups come a few agents per tenant at a time; checked inside each tenant's transaction, the
-- check cost every set-up batch a statement and a tenant scope of its own). For each (agent, tenant, credential
-- prefix) the tunnel authenticated with, by its position in the arrays ("n", from 1): the agent's status, its tenant's
-- status, and whether that prefix is still the agent's credential. An agent of another tenant than the one given, or deleted, is absent. It returns no credential,
-- prefix or hash: the caller already holds the prefix it asks about and learns only whether it still holds. At most
-- 1,000 agents per call. Same rules as the authentication lookups (payorch_find_agents_by_credentials): PL/pgSQL,
-- SECURITY DEFINER with a fixed search_path, executable by payorch_app only.
CREATE FUNCTION payorch_check_agent_access(p_agents uuid[], p_tenants uuid[], p_prefixes text[])
  RETURNS TABLE ("n" bigint, "status" "AgentStatus", "tenantStatus" "TenantStatus", "credentialHeld" boolean)
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public
  AS $$ BEGIN
    RETURN QUERY SELECT x.n, a."status", t."status", COALESCE(a."credentialPrefix" = x.prefix, false)
      FROM unnest(p_agents[1:1000], p_tenants[1:1000], p_prefixes[1:1000]) WITH ORDINALITY AS x(agent, tenant, prefix, n)
      JOIN "Agent" a ON a."id" = x.agent AND a."tenantId" = x.tenant
      JOIN "Tenant" t ON t."id" = a."tenantId";
  END $$;
REVOKE ALL ON FUNCTION payorch_check_agent_access(uuid[], uuid[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_check_agent_access(uuid[], uuid[], text[]) TO payorch_app;
