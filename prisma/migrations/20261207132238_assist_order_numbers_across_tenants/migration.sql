-- Whether a payment's order number is also a payment's of ANOTHER tenant at the same Assist merchant account
-- (payorch_assist_account: server origin + Merchant_ID). Assist keeps one order per number and account, and a tenant
-- has one settings row per account, but two tenants may register one account: then an order Assist shows under the
-- number, read after this payment's answer was lost, may be the other tenant's payment's, and is not proven this
-- one's (libs/wallet-payments ownership.ts: UNKNOWN, ORDER_NOT_PROVEN, for a human). Row-level security hides the other
-- tenant's rows from the caller, hence a function: it answers about the caller's own payment only (the tenant of the
-- transaction, app.tenant_id), and returns a boolean: no id, amount or tenant of the other payment. Same rules as the
-- other cross-tenant lookups (payorch_check_agent_access): PL/pgSQL, SECURITY DEFINER with a fixed search_path,
-- executable by payorch_app only.
CREATE FUNCTION payorch_wallet_order_number_elsewhere(p_payment uuid) RETURNS boolean
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public
  AS $$ BEGIN
    RETURN EXISTS (
      SELECT 1
      FROM "WalletPayment" own
      JOIN "AssistMerchant" m ON m."id" = own."merchantId"
      JOIN "AssistMerchant" om ON om."tenantId" <> own."tenantId"
        AND payorch_assist_account(om."serverUrl", om."merchantId") = payorch_assist_account(m."serverUrl", m."merchantId")
      JOIN "WalletPayment" other ON other."merchantId" = om."id" AND other."orderNumber" = own."orderNumber"
      WHERE own."id" = p_payment AND own."tenantId" = payorch_current_tenant());
  END $$;
REVOKE ALL ON FUNCTION payorch_wallet_order_number_elsewhere(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payorch_wallet_order_number_elsewhere(uuid) TO payorch_app;
