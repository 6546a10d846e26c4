export { ApiError, assertUnreachable, notFound, PayorchError, type ApiErrorCode } from './errors';
export { SecretBox, SecretError, parseMasterKey, type MasterKey, type SecretErrorCode } from './secrets/envelope';
export { isUuid, UUID_PATTERN, type TenantContext } from './tenant-context';
export { JOB_NAMES, QUEUES, type JobData, type JobName } from './jobs';
export { hashToken, issueToken, TOKEN_KINDS, tokenPrefix, verifyToken, type IssuedToken, type TokenKind } from './secrets/tokens';
export { ALL_SCOPES, type Scope } from './scopes';
export { probe, withTimeout } from './async';
export { type TerminalCommand, type TerminalCommandReply } from './terminal-commands';
