export { REASON_CODES, type ReasonCode, type ResultCodeEntry, type ResultCodeTable } from './types';
export { JOINPROTO_CANCELED_CODE, JOINPROTO_RESULT_CODES, joinprotoResult } from './joinproto';
export { JPAY_RESULT_CODES, jpayReceiptResult, jpayStatusResult } from './jpay';
export { SSI_RESULT_CODES, ssiResult } from './ssi-ecr';
export { renderResultCodesDoc } from './render';
