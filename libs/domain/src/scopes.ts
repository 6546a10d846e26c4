/** API key scopes. A key carries a subset; `@RequireScopes` on each route names what it needs. */
export const ALL_SCOPES = [
  'agents:read',
  'agents:write',
  'stores:read',
  'stores:write',
  'terminals:read',
  'terminals:write',
] as const;

export type Scope = (typeof ALL_SCOPES)[number];
