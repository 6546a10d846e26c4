/**
 * @payorch/settlement — framework-free settlement logic: totals, per-protocol parsing, reconciliation, schedules, CSV
 * (pure), and the one writer of `Settlement.status` (transition.ts, in the caller's tenant transaction).
 */
export {
  BUCKETS,
  bucketOf,
  emptyBuckets,
  isComparedBucket,
  netOf,
  placementOf,
  totalsOfOperations,
  type BucketSpec,
  type CountAmount,
  type Placement,
  type RecordedOperation,
  type SettlementProtocol,
  type Totals,
  type TotalsTransaction,
  UNCOMPARED_BUCKETS,
} from './totals';
export {
  JOINPROTO_TOTALS_MISMATCH,
  type JoinprotoCloseDay,
  parseJoinprotoCloseDay,
  parseJpaySettlement,
  parseSsiReport,
  parseTerminalTotals,
  settlementRawFromOutcome,
  SSI_TOTALS_MISMATCH,
  TotalsUnavailable,
  type SettlementOutcomeFields,
  type SettlementRawData,
} from './parse';
export { CLOSE_DAY_TYPES, type CloseDayOperation, type CloseDayOutcome, type CloseDayOutcomeKind, closeDayOutcome } from './close-day';
export {
  type BatchDiscrepancy,
  type BatchNets,
  batchNets,
  type BatchReport,
  DISCREPANCY_CSV_COLUMNS,
  discrepancyReportCsv,
  type DiscrepancyReport,
  type DiscrepancyRow,
  discrepancyRows,
} from './report';
export { manualJobId, scheduledFireJobId, scheduleRunKey, schedulerIdOf, settlementJobId, settlementKeys } from './keys';
export { reconcile, type Discrepancy, type Reconciliation } from './reconcile';
export { CLOSE_DAY_REDO_MS, type SettlementDeferral, settlementRetryDelayMs } from './retry';
export {
  addDays,
  BUSINESS_DATE_PATTERN,
  BUSINESS_DAY_STARTS_AT,
  businessDateOf,
  cronPatternOf,
  lastScheduledInstant,
  LOCAL_TIME_PATTERN,
  localDateOf,
  localTimeOf,
  scheduledInstantOf,
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
