/**
 * @payorch/settlement — framework-free settlement logic: totals, per-protocol parsing, reconciliation, schedules, CSV
 * (pure), and the one writer of `Settlement.status` (transition.ts, in the caller's tenant transaction).
 */
export {
  BUCKETS,
  bucketOf,
  emptyBuckets,
  netOf,
  totalsOfOperations,
  type CountAmount,
  type RecordedOperation,
  type SettlementProtocol,
  type Totals,
  type TotalsTransaction,
} from './totals';
export {
  parseJoinprotoCloseDay,
  parseJpaySettlement,
  parseSsiReport,
  parseTerminalTotals,
  settlementRawFromOutcome,
  TotalsUnavailable,
  type SettlementOutcomeFields,
  type SettlementRawData,
} from './parse';
export { manualJobId, scheduleRunKey, schedulerIdOf, settlementJobId, settlementKeys } from './keys';
export { reconcile, type Discrepancy, type Reconciliation } from './reconcile';
export {
  addDays,
  BUSINESS_DATE_PATTERN,
  BUSINESS_DAY_STARTS_AT,
  businessDateOf,
  cronPatternOf,
  LOCAL_TIME_PATTERN,
  localDateOf,
  localTimeOf,
} from './schedule';
export { csvField, csvRow } from './csv';
export {
  assertSettlementTransition,
  canTransitionSettlement,
  insertSettlement,
  type NewSettlement,
  SETTLEMENT_CREATED_AS,
  SETTLEMENT_EVENT,
  SETTLEMENT_TRANSITIONS,
  type SettlementColumns,
  type SettlementTransition,
  SettlementTransitionError,
  type SettlementTransitionResult,
  transitionSettlement,
} from './transition';
