-- Whether settings of ANOTHER tenant than the transaction's (app.tenant_id) name this Assist merchant account
-- (payorch_assist_account: server origin + Merchant_ID). An Assist account must be registered with one tenant only:
-- Assist keeps one order per number and account, and two tenants' payments under one number make an order under it
-- neither's (docs/wallet-payments.md §7). The gateway does not refuse such settings — a refusal would tell a tenant
-- that some other tenant of the platform holds that account — but raises an operator alert
-- (`assist_account_shared`, payorch_assist_accounts_shared_total). Row-level security hides the other tenants' rows,
-- hence a function that answers yes or no and nothing else; false without a tenant scope. Same rules as the other
-- cross-tenant lookups: PL/pgSQL, SECURITY DEFINER with a fixed search_path, executable by payorch_app only.
CREATE FUNCTION payorch_assist_account_elsewhere(p_server_url text, p_merchant_id text) RETURNS boolean
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public
  AS $$ BEGIN
    RETURN payorch_current_tenant() IS NOT NULL AND EXISTS (
      SELECT 1 FROM "AssistMerchant" m
      WHERE m."tenantId" <> payorch_current_tenant()
        AND payorch_assist_account(m."serverUrl", m."merchantId") = payorch_assist_account(p_server_url, p_merchant_id));
  END $$;
REVOKE ALL ON FUNCTION payorch_assist_account_elsewhere(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_assist_account_elsewhere(text, text) TO payorch_app;
