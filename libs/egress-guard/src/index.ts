export { type AddressCategory, classifyAddress, embeddedIPv4, formatAddress, type IpAddress, parseAddressLiteral, parseCidr, SPECIAL_RANGES } from './address';
export { guardedFetch, guardedHttpRequest, type GuardedHttpRequest, type GuardedHttpResponse } from './http';
export { type AddressDecision, type DestinationRefusal, EgressPolicy, isLocalhostName, normaliseHostName } from './policy';
export { EgressError, NAME_REFUSED, type Resolver, resolveDestination, type ResolveOptions, systemResolver } from './resolve';
