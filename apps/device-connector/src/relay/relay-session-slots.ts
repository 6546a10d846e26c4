import { KeyedSlots } from '@payorch/domain';

/** Why a 91 was refused for the sessions already held (label `reason` of `payorch_connector_relay_sessions_refused_total`). */
export type SessionCapReason = 'terminal_limit' | 'tenant_limit' | 'connector_limit';

export type SessionSlot = { readonly release: () => void } | { readonly refused: Exclude<SessionCapReason, 'terminal_limit'>; readonly limit: number };

/**
 * The relay sessions of one connector instance: at most `perTenant` of one tenant (all its terminals) and `total` of
 * all tenants at once, the opens still under way included. Without them only RELAY_MAX_CONNECTIONS_PER_TERMINAL
 * bounded the sessions, so a tenant bridging T terminals (or forging frames for T terminal ids) held 4·T sessions,
 * each a socket and up to 1 MiB of unread host bytes, in the memory and file descriptors every tenant shares.
 *
 * `take` is synchronous (checked and taken in one step, before the 91's first await) and hands out the slot as an
 * idempotent release (KeyedSlots): a session gives it back once, however it ends; a refused 91 takes nothing.
 */
export class RelaySessionSlots {
  private readonly tenants: KeyedSlots;
  private readonly connector: KeyedSlots;

  constructor(
    readonly perTenant: number,
    readonly total: number,
    private readonly onRefused: (reason: SessionCapReason) => void = () => undefined,
  ) {
    this.tenants = new KeyedSlots(perTenant);
    this.connector = new KeyedSlots(total);
  }

  /** A slot for one session of `tenantId`, or why none: the tenant's cap first, then the connector's. */
  take(tenantId: string): SessionSlot {
    const tenant = this.tenants.take(tenantId);
    if (!tenant) return this.refuse('tenant_limit', this.perTenant);
    const connector = this.connector.take('');
    if (!connector) {
      tenant();
      return this.refuse('connector_limit', this.total);
    }
    return {
      release: () => {
        tenant();
        connector();
      },
    };
  }

  /** Counts a 91 refused for the terminal's own limit (RELAY_MAX_CONNECTIONS_PER_TERMINAL), with the caps' refusals. */
  refusedForTerminal(): void {
    this.onRefused('terminal_limit');
  }

  /** Sessions held now on this connector. */
  get held(): number {
    return this.connector.of('');
  }

  /** Sessions `tenantId` holds now on this connector. */
  of(tenantId: string): number {
    return this.tenants.of(tenantId);
  }

  private refuse(reason: Exclude<SessionCapReason, 'terminal_limit'>, limit: number): SessionSlot {
    this.onRefused(reason);
    return { refused: reason, limit };
  }
}
