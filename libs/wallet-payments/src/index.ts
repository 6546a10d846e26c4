/** Wallet payments through Assist TokenPay: logic shared by the gateway (pays) and the worker (resolves). */
export { createAssistClient, type AssistClientSettings, type AssistMerchantRow } from './assist-client';
export { type PayorchWalletErrorCode, WALLET_ERROR_CODES, WALLET_PERSON_ERROR_CODES, type WalletErrorCode } from './error-codes';
export { bodyPathOf } from './fields';
export { assistMerchantAad, openMerchantSecrets, sealMerchantSecrets, type AssistMerchantSecrets } from './merchant-secrets';
export {
  amountsOfOrder,
  amountsOfPaid,
  changeOfHumanVerdict,
  changeOfOutcome,
  errorBody,
  FINAL_STATES,
  humanErrorBody,
  operationNotFoundError,
  orderNotFoundError,
  type OutcomeError,
  type HumanPaymentVerdict,
  type HumanVerdictFacts,
  paidState,
  isFinalState,
  stateOfOrderStatus,
  summarizeOrder,
  UNRESOLVED_STATES,
  type AssistOperationSummary,
  type AssistOrderSummary,
  type PaymentChange,
  type PaymentErrorBody,
  type OperationOutcomeColumns,
  type PaymentTerms,
  settlementOfOperation,
  type WalletAmounts,
} from './outcome';
export { ASSIST_TYPE_OF_KIND, type ClaimingOperation, type OperationClaims, operationClaims } from './operation-claims';
export { changeOfFoundOrder, changeOfRefusal, claimsOnOrder, judgeOrder, NO_CLAIMS, type OrderClaims, type OrderVerdict, type PaymentFacts } from './ownership';
export { RESOLVE_JOB, resolveJob, resolveJobId, ensureResolveJob, type ResolveQueue, SWEEP_JOB, SWEEP_SCHEDULER_ID, type ResolvePolicy } from './resolve-job';
export { walletOperationEventData, walletPaymentEventData, type WalletOperationEventRow, type WalletPaymentEventRow } from './events';
export {
  addOperation,
  afterOperation,
  amountsOfRow,
  insertWalletOperation,
  type NewWalletOperation,
  type OperationSettlement,
  type OperationSettlementResult,
  settleWalletOperation,
  WALLET_OPERATION_TRANSITIONS,
  type WalletEventType,
  type WalletOperationRow,
  assertWalletTransition,
  canTransitionWalletPayment,
  insertWalletPayment,
  type NewWalletPayment,
  STATE_OF_ORDER_STATE,
  transitionWalletPayment,
  WALLET_TRANSITIONS,
  type WalletPaymentRow,
  type WalletPaymentTransition,
  WalletPaymentTransitionError,
  type WalletPaymentTransitionResult,
  type HumanOperationResolution,
  type HumanPaymentResolution,
  type HumanVerdictBy,
  resolveWalletOperationByHand,
  resolveWalletPaymentByHand,
  WALLET_HUMAN_RESOLUTIONS,
  WALLET_OPERATION_HUMAN_RESOLUTIONS,
  type WalletResolution,
} from './transition';
