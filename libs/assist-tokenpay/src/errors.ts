/**
 * Typed errors of the Assist TokenPay client. Callers switch on `code`, never on `message`.
 * No error ever carries a credential, a payment token or a full PAN: messages name the field
 * and the rule, not the value.
 */
import type { FirstCodeName, SecondCodeInfo } from './codes';

export abstract class AssistError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Why a request field was refused before anything was sent. */
export type ValidationIssueCode =
  | 'REQUIRED'
  | 'INVALID_TYPE'
  | 'TOO_SHORT'
  | 'TOO_LONG'
  | 'INVALID_CHARACTERS'
  | 'INVALID_FORMAT'
  | 'INVALID_VALUE'
  | 'TOO_MANY_DIGITS'
  | 'NOT_POSITIVE'
  | 'INVALID_DATE'
  | 'INVALID_JSON'
  | 'TOKEN_IS_BASE64'
  | 'MISSING_KEY'
  | 'REQUIRED_TOGETHER'
  | 'UNSUPPORTED_TOKEN_TYPE'
  | 'UNSUPPORTED_CURRENCY'
  | 'INSECURE_URL';

export interface ValidationIssue {
  /** The parameter name as the spec's table writes it (`OrderAmount`, `ChequeItems[0].price`). */
  readonly field: string;
  readonly code: ValidationIssueCode;
  readonly message: string;
}

/**
 * A request (or client configuration) that breaks a rule of the spec's parameter table.
 * `field` and `code` are those of the first issue; `issues` lists all of them.
 */
export class AssistValidationError extends AssistError {
  readonly code: ValidationIssueCode;
  readonly field: string;
  readonly issues: readonly ValidationIssue[];

  constructor(issues: readonly ValidationIssue[]) {
    const [first] = issues;
    if (!first) throw new Error('AssistValidationError needs at least one issue');
    super(issues.map((i) => `${i.field}: ${i.message}`).join('; '));
    this.code = first.code;
    this.field = first.field;
    this.issues = issues;
  }
}

/**
 * Assist answered with a non-zero `firstcode` (spec table "Коды автоматизированных интерфейсов").
 * `code` is the named first code; `secondCode` says which parameter or object it is about.
 */
export class AssistServerError extends AssistError {
  readonly code: FirstCodeName;

  constructor(
    readonly firstCode: number,
    readonly secondCode: number,
    code: FirstCodeName,
    readonly second: SecondCodeInfo | undefined,
    message: string,
  ) {
    super(message);
    this.code = code;
  }

  /** The request parameter the second code points at, when it points at one (e.g. `OrderAmount` for 108). */
  get field(): string | undefined {
    return this.second?.field;
  }
}

export type TransportErrorCode = 'TIMEOUT' | 'NETWORK' | 'HTTP_STATUS' | 'RESPONSE_TOO_LARGE';

/** The answer was lost or unusable at the HTTP level: the payment state is unknown, never failed. */
export class AssistTransportError extends AssistError {
  constructor(
    readonly code: TransportErrorCode,
    message: string,
    readonly httpStatus?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type ProtocolErrorCode = 'MALFORMED_RESPONSE' | 'UNRECOGNIZED_VALUE';

/** The server's answer could not be read as the spec describes it. */
export class AssistProtocolError extends AssistError {
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type IntegrityErrorCode = 'CHECKVALUE_MISSING' | 'CHECKVALUE_MISMATCH' | 'ORDER_MISMATCH' | 'SIGNATURE_MISSING' | 'SIGNATURE_MISMATCH';

/**
 * The answer failed its authenticity checks (checkvalue, or it describes a different order than
 * the one asked about). It must never be trusted; the client reports it through `onIntegrityFailure`.
 */
export class AssistIntegrityError extends AssistError {
  constructor(
    readonly code: IntegrityErrorCode,
    message: string,
  ) {
    super(message);
  }
}
