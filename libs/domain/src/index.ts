export { ApiError, assertUnreachable, notFound, PayorchError, type ApiErrorCode } from './errors';
export { SecretBox, SecretError, parseMasterKey, type MasterKey, type SecretErrorCode } from './secrets/envelope';
export { isUuid, UUID_PATTERN, type TenantContext } from './tenant-context';
export { JOB_NAMES, QUEUES, type JobData, type JobName } from './jobs';
export { hashToken, issueToken, TOKEN_KINDS, tokenPrefix, verifyToken, type IssuedToken, type TokenKind } from './secrets/tokens';
export {
  ALL_SCOPES,
  effectiveScopes,
  holdsScope,
  isKeyScope,
  isRoleScope,
  KEY_SCOPES,
  type KeyScope,
  ROLE_GRANTS,
  ROLE_SCOPES,
  type RoleScope,
  type Scope,
  type ScopeCheckOptions,
  ungrantableScopes,
} from './scopes';
export { probe, withTimeout } from './async';
export { canonicalJson } from './canonical-json';
export { BatchedLookup, type BatchedLookupOptions } from './batched-lookup';
export { KeyedSlots } from './keyed-slots';
export { KeyedSerialQueue, QueueFullError, type SerialQueueOptions } from './serial-queue';
export {
  type DispatchOptions,
  type OperationCommandCopy,
  type TerminalCommand,
  type TerminalCommandDispatcher,
  type TerminalCommandReply,
} from './terminal-commands';
export { DATABASE_RETRY_AFTER_SECONDS, type ErrorBody, httpFailure, statusOf } from './http/error-envelope';
export { type BodyRequest, JSON_MEDIA_TYPES, requireJsonBody } from './http/json-body';
export { assignRequestId, requestIdMiddleware, requestIdOf } from './http/request-id';
