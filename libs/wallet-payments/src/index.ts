/** Wallet payments through Assist TokenPay: logic shared by the gateway (pays) and the worker (resolves). */
export { createAssistClient, type AssistClientSettings, type AssistMerchantRow } from './assist-client';
export { bodyPathOf } from './fields';
export { assistMerchantAad, openMerchantSecrets, sealMerchantSecrets, type AssistMerchantSecrets } from './merchant-secrets';
export {
  changeOfOutcome,
  errorBody,
  FINAL_STATES,
  isFinalState,
  stateOfOrderStatus,
  summarizeOrder,
  UNRESOLVED_STATES,
  type AssistOperationSummary,
  type AssistOrderSummary,
  type PaymentChange,
  type PaymentErrorBody,
} from './outcome';
export { RESOLVE_JOB, resolveJob, resolveJobId, ensureResolveJob, type ResolveQueue, SWEEP_JOB, SWEEP_SCHEDULER_ID, type ResolvePolicy } from './resolve-job';
export { walletPaymentEventData, type WalletPaymentEventRow } from './events';
export {
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
} from './transition';
