import type { DomainEventType } from '@payorch/db';

/** Every DomainEventType at runtime (for `types` / `eventTypes` validation). */
export const DOMAIN_EVENT_TYPES = [
  'agent.deleted',
  'agent.enrolled',
  'agent.offline',
  'agent.online',
  'agent.revoked',
  'campaign.canceled',
  'campaign.completed',
  'campaign.created',
  'campaign.paused',
  'campaign.resumed',
  'campaign.wave_completed',
  'campaign.wave_halted',
  'campaign.wave_started',
  'operation.completed',
  'operation.created',
  'operation.progress',
  'operation.recovered',
  'operation.unknown',
  'relay.denied',
  'settlement.completed',
  'settlement.discrepancy',
  'settlement.failed',
  'tenant.disabled',
  'tenant.enabled',
  'terminal.created',
  'terminal.deleted',
  'terminal.offline',
  'terminal.online',
  'terminal.updated',
  'wallet_payment.canceled',
  'wallet_payment.captured',
  'wallet_payment.created',
  'wallet_payment.operation_failed',
  'wallet_payment.partially_canceled',
  'wallet_payment.partially_captured',
  'wallet_payment.partially_refunded',
  'wallet_payment.refunded',
  'wallet_payment.updated',
] as const satisfies readonly DomainEventType[];

// A type added to the DomainEventType union but not listed above fails to compile here.
type Missing = Exclude<DomainEventType, (typeof DOMAIN_EVENT_TYPES)[number]>;
const exhaustive: Missing extends never ? true : Missing = true;
void exhaustive;

/** `operation.*` style families: the part before the dot of every type. */
export const EVENT_FAMILIES = [...new Set(DOMAIN_EVENT_TYPES.map((t) => `${t.split('.')[0]!}.*`))];

/** A type filter: exact types and `family.*` patterns; empty = everything. */
export function typeMatcher(patterns: readonly string[]): (type: string) => boolean {
  if (patterns.length === 0 || patterns.includes('*')) return () => true;
  const exact = new Set(patterns.filter((p) => !p.endsWith('.*')));
  const families = patterns.filter((p) => p.endsWith('.*')).map((p) => p.slice(0, -1));
  return (type) => exact.has(type) || families.some((f) => type.startsWith(f));
}
