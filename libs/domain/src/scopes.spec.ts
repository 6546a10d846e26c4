import { ALL_SCOPES, effectiveScopes, holdsScope, ROLE_GRANTS, ungrantableScopes } from './scopes';

describe('API key scopes', () => {
  it('read covers every …:read and nothing else; operate adds payments; admin covers everything', () => {
    expect([...effectiveScopes(['read'])].every((s) => s.endsWith(':read'))).toBe(true);
    expect(effectiveScopes(['read']).size).toBe(ALL_SCOPES.filter((s) => s.endsWith(':read')).length);
    expect([...effectiveScopes(['operate'])].filter((s) => s.endsWith(':write')).sort()).toEqual(['operations:write', 'settlements:write', 'wallet:write']);
    expect(effectiveScopes(['admin'])).toEqual(new Set(ALL_SCOPES));
    expect(ROLE_GRANTS.admin).toEqual(ALL_SCOPES);
  });

  it('checks a route scope against held fine scopes and roles', () => {
    expect(holdsScope(['stores:write'], 'stores:write')).toBe(true);
    expect(holdsScope(['stores:read'], 'stores:write')).toBe(false);
    expect(holdsScope(['read'], 'events:read')).toBe(true);
    expect(holdsScope(['read'], 'operations:write')).toBe(false);
    expect(holdsScope(['operate'], 'operations:write')).toBe(true);
    expect(holdsScope(['operate'], 'stores:write')).toBe(false);
    // Key management needs the admin role itself: all fine scopes are not enough.
    expect(holdsScope([...ALL_SCOPES], 'admin')).toBe(false);
    expect(holdsScope(['admin'], 'admin')).toBe(true);
    expect(holdsScope(['operate'], 'read')).toBe(true);
    expect(holdsScope(['read'], 'operate')).toBe(false);
  });

  it('on settings routes only admin (or the fine scope itself) covers a write', () => {
    expect(holdsScope(['operate'], 'wallet:write', { settings: true })).toBe(false);
    expect(holdsScope(['operate'], 'wallet:read', { settings: true })).toBe(true);
    expect(holdsScope(['admin'], 'wallet:write', { settings: true })).toBe(true);
    expect(holdsScope(['wallet:write'], 'wallet:write', { settings: true })).toBe(true);
  });

  it('never lets a key grant a scope it does not hold', () => {
    expect(ungrantableScopes(['admin'], ['admin', 'stores:write'])).toEqual([]);
    expect(ungrantableScopes(['operate'], ['read', 'operations:write', 'operate'])).toEqual([]);
    expect(ungrantableScopes(['operate'], ['admin', 'stores:write'])).toEqual(['admin', 'stores:write']);
    expect(ungrantableScopes(['read'], ['operate'])).toEqual(['operate']);
    // Every fine scope held directly still does not make an admin.
    expect(ungrantableScopes([...ALL_SCOPES], ['admin', 'read', 'operate'])).toEqual(['admin']);
    expect(ungrantableScopes(['stores:read'], ['read', 'stores:read'])).toEqual(['read']);
  });
});
