import { Inject, Injectable } from '@nestjs/common';

import type { GatewayConfig } from '@payorch/config';
import type { KeyScope } from '@payorch/domain';
import type { Logger } from '@payorch/logging';

import { ApiKeyLookups } from '../common/api-key-lookups';
import { GATEWAY_CONFIG, LOGGER } from '../common/tokens';

/** What a stream is told when its key stops authenticating (an SSE comment, a WebSocket close reason). */
export const KEY_NO_LONGER_VALID = 'API key revoked, expired or out of scope, or its tenant disabled';

/** Watches a request's key (`KeyWatch.watch` bound to it): `end` once the key fails; returns what stops watching. */
export type WatchKey = (end: (reason: string) => void) => () => void;

/**
 * Keeps what outlives its request to the key that made it: a live event stream, a `POST …/operations?wait=` waiting
 * for its outcome (up to 120 s). Either was authenticated once, at its start, so a key revoked (or expired, or its
 * tenant disabled) kept receiving the tenant's events for as long as the connection lasted — the ops console left open
 * on a revoked key stayed live (credentials review) — or was answered the operation at the end of its wait. The key is
 * checked again (`ApiKeyLookups.holds`, as a request is: hash, revocation, expiry, active tenant, the scope its route
 * needs) at once when this gateway hears of a change of the tenant's keys or status (a revocation through any gateway
 * or the admin CLI is announced), and every EVENTS_HEARTBEAT_MS in case an announcement was lost or a key expired; a
 * key that no longer authenticates ends what it holds (`end`). A check that cannot be made (PostgreSQL away) leaves it
 * open until the next one. Watching costs no query until the tenant's keys change or a heartbeat passes, and then
 * usually none either (the lookup kept by ApiKeyLookups, unless it was the key that changed).
 */
@Injectable()
export class KeyWatch {
  constructor(
    private readonly keys: ApiKeyLookups,
    @Inject(GATEWAY_CONFIG) private readonly config: Pick<GatewayConfig, 'EVENTS_HEARTBEAT_MS'>,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Watches `token` (the request's key, of `tenantId`, holding `scope`: what its route required) until the returned
   * function is called; `end` once it fails.
   */
  watch(tenantId: string, token: string, scope: KeyScope, end: (reason: string) => void): () => void {
    let stopped = false;
    let checking = false;
    // A change heard while a check was on its way: that check may have read the key before it; check once more.
    let again = false;
    const check = (): void => {
      if (stopped) return;
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      again = false;
      this.keys.holds(token, scope).then(
        (holds) => {
          checking = false;
          if (stopped) return;
          if (!holds) {
            this.logger.info({ tenantId, scope }, 'API key no longer authenticates: its live event stream or wait ends');
            stop();
            end(KEY_NO_LONGER_VALID);
          } else if (again) check();
        },
        () => {
          // PostgreSQL away: the stream or wait stays open until a check can be made.
          checking = false;
          if (again) check();
        },
      );
    };
    const timer = setInterval(check, this.config.EVENTS_HEARTBEAT_MS);
    timer.unref();
    const off = this.keys.onTenantChanged((changed) => {
      if (changed === tenantId) check();
    });
    const stop = () => {
      stopped = true;
      clearInterval(timer);
      off();
    };
    return stop;
  }
}
