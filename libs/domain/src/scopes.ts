/** Fine-grained API key scopes. `@RequireScopes` on each route names the one it needs. */
export const ALL_SCOPES = [
  'agents:read',
  'agents:write',
  'audit:read',
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

/**
 * Role scopes: what a key is for, each a set of fine scopes (docs/security.md "Scopes").
 *   read    dashboards: every `…:read` (all GETs except the key list, and the live event stream)
 *   operate POS / ecommerce: read + operations, wallet payments, settlements of a terminal
 *   admin   everything, including stores, agents, terminals, egress, webhooks, settings
 *           (assist merchants, settlement schedules) and the tenant's API keys.
 */
export const ROLE_SCOPES = ['read', 'operate', 'admin'] as const;
export type RoleScope = (typeof ROLE_SCOPES)[number];

/** Anything a key may carry: role scopes and fine scopes, freely mixed. */
export type KeyScope = RoleScope | Scope;
export const KEY_SCOPES: readonly KeyScope[] = [...ROLE_SCOPES, ...ALL_SCOPES];

const READ: readonly Scope[] = ALL_SCOPES.filter((s) => s.endsWith(':read'));

/** The fine scopes each role covers. */
export const ROLE_GRANTS: Readonly<Record<RoleScope, readonly Scope[]>> = {
  read: READ,
  operate: [...READ, 'operations:write', 'settlements:write', 'wallet:write'],
  admin: ALL_SCOPES,
};

export const isRoleScope = (s: string): s is RoleScope => (ROLE_SCOPES as readonly string[]).includes(s);
export const isKeyScope = (s: string): s is KeyScope => (KEY_SCOPES as readonly string[]).includes(s);

export interface ScopeCheckOptions {
  /**
   * The route changes settings (assist merchants, settlement schedules): its `…:write` fine scope is
   * still accepted when held directly (keys made before roles existed), but of the roles only `admin` covers it.
   */
  settings?: boolean;
}

/** Whether a key holding `held` may use a route that needs `needed` (a fine scope, or a role for the key routes). */
export function holdsScope(held: readonly string[], needed: KeyScope, options: ScopeCheckOptions = {}): boolean {
  if (held.includes('admin') || held.includes(needed)) return true;
  if (isRoleScope(needed)) return needed === 'read' && held.includes('operate');
  const settingsWrite = options.settings === true && needed.endsWith(':write');
  return held.some((s) => isRoleScope(s) && !settingsWrite && ROLE_GRANTS[s].includes(needed));
}

/** Every fine scope a key holding `held` has (its roles expanded). */
export function effectiveScopes(held: readonly string[]): Set<Scope> {
  const out = new Set<Scope>();
  for (const s of held) {
    if (isRoleScope(s)) ROLE_GRANTS[s].forEach((g) => out.add(g));
    else if ((ALL_SCOPES as readonly string[]).includes(s)) out.add(s as Scope);
  }
  return out;
}

/**
 * The scopes of `requested` that a key holding `held` may not grant: a key never creates a key
 * stronger than itself. `admin` (which also manages keys) only by an admin key; `read`/`operate` and
 * fine scopes by any key holding every fine scope they cover, directly or through a role.
 */
export function ungrantableScopes(held: readonly string[], requested: readonly KeyScope[]): KeyScope[] {
  if (held.includes('admin')) return [];
  const mine = effectiveScopes(held);
  return requested.filter((s) => s === 'admin' || (isRoleScope(s) ? ROLE_GRANTS[s].some((g) => !mine.has(g)) : !mine.has(s)));
}
