/** API key scopes. A key carries a subset; `@RequireScopes` on each route names what it needs. */
export const ALL_SCOPES = [
  'agents:read',
  'agents:write',
  'egress:read',
  'egress:write',
  'events:read',
  'operations:read',
  'operations:write',
  'settlements:read',
  'settlements:write',
  'stores:read',
  'stores:write',
  'terminals:read',
  'terminals:write',
  'wallet:read',
  'wallet:write',
  'webhooks:read',
  'webhooks:write',
] as const;

export type Scope = (typeof ALL_SCOPES)[number];
