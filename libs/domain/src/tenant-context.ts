/** Who is acting, for which tenant, in which request. First parameter of every service method. */
export interface TenantContext {
  readonly tenantId: string;
  readonly actor: { readonly type: 'api_key' | 'admin' | 'system' | 'agent'; readonly id: string | null };
  readonly requestId: string;
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}
