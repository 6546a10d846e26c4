export { type AddressCategory, classifyAddress, embeddedIPv4, formatAddress, type IpAddress, parseAddressLiteral, parseCidr, SPECIAL_RANGES } from './address';
export { guardedFetch, guardedHttpRequest, type GuardedHttpRequest, type GuardedHttpResponse } from './http';
export {
  DEFAULT_LOOKUP_LIMITS,
  type LookupAnswers,
  type LookupContext,
  LookupLimiter,
  type LookupLimits,
  lookupLimits,
  LOOKUP_REFUSALS,
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
  systemLookups,
  systemResolver,
} from './resolve';
