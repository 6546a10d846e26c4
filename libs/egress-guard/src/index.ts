export { type AddressCategory, classifyAddress, embeddedIPv4, formatAddress, type IpAddress, parseAddressLiteral, parseCidr, SPECIAL_RANGES } from './address';
export { DEFAULT_DNS_TIMEOUT_MS, DnsLookup, type DnsLookupOptions } from './dns-lookup';
export { guardedFetch, guardedHttpRequest, type GuardedHttpRequest, type GuardedHttpResponse } from './http';
export {
  DEFAULT_LOOKUP_LIMITS,
  type LookupAnswers,
  type LookupContext,
  LookupLimiter,
  type LookupLimits,
  lookupLimits,
  type LookupQuery,
  LOOKUP_REFUSALS,
  LOOKUP_TIMED_OUT,
  type LookupRefusal,
  LookupRefusedError,
  type LookupStats,
} from './lookup-limiter';
export {
  type AddressDecision,
  type DestinationRefusal,
  EGRESS_CHANNELS,
  type EgressChannel,
  type EgressGrantLike,
  EgressPolicy,
  isLocalhostName,
  normaliseGrant,
  normaliseHostName,
} from './policy';
export {
  configureSystemLookups,
  EgressError,
  NAME_REFUSED,
  type Resolver,
  resolveDestination,
  type ResolveOptions,
  systemDns,
  systemLookups,
  systemResolver,
} from './resolve';
