export { insertOperation, type NewOperation } from './create';
export { AmountError, fromDbAmount, toDbAmount } from './amounts';
export {
  OperationCommandHandler,
  type CommandHandlerOptions,
  type DriverSource,
  NEVER_SENT_AFTER_MS,
  PENDING_HOLD_INTERVAL_MS,
  type TerminalRecoveryReport,
} from './command-handler';
export { offlineDispatcher, TERMINAL_COMMAND_DISPATCHER, type TerminalCommandDispatcher } from './dispatcher';
export { executeAndFollow, type FollowOptions, type FollowResult, followOperation, isUnheldPending, RUNNING_STATES, UNHELD_PENDING_MS } from './follow';
export {
  ACCESS_EVENT_TYPES,
  accessChannel,
  announceKeysChanged,
  apiKeysChangedChannel,
  eventMessageObject,
  eventsChannel,
  notifyCommitted,
  type Publisher,
  redisEventSink,
  sealedSubjectOf,
  type SubjectSealer,
  webhooksChangedChannel,
} from './event-channel';
export { type EventSink, type ExecutionReport, MAX_PROGRESS_PER_RUN, OperationExecutor, type ExecutorOptions } from './executor';
export {
  asRefs,
  commandCopyOf,
  describeInDoubt,
  eventData,
  IN_DOUBT_STATES,
  type InDoubtState,
  OPEN_STATES_SQL,
  OPERATION_ROW_COLUMNS,
  operationById,
  type OperationInDoubt,
  operationInDoubtOf,
  recoveringOperationOf,
  operationRowColumns,
  type OperationRow,
  type OperationView,
  outcomeWrite,
  RUNS_WHILE_RECOVERING,
  toOperationView,
} from './records';
export { type TerminalRefusal, terminalRefusalOf, type TerminalStatuses } from './operable-terminal';
export { ANOTHER_DEVICE, recoverOperation, type RecoveryReport } from './recovery';
export {
  canTransition,
  FINAL_STATES,
  OPEN_STATES,
  fromApiState,
  fromDbType,
  isFinal,
  type OperationStateApi,
  type OperationStateName,
  type OperationTypeName,
  sourcesOf,
  stateOfOutcome,
  toApiState,
  toDbType,
  TRANSITIONS,
} from './state-machine';
export { failNeverSent, flagForHuman, holdPending, type ManualResolution, markStuckUnknown, resolveManually, type SupervisionResult } from './supervision';
export { COMMAND_ID_BLOCK, reserveTerminalCommandIds, terminalCommandIds } from './protocol-ids';
export {
  assertTransition,
  type OperationStep,
  type OperationTransition,
  OperationTransitionError,
  type OperationTransitionErrorCode,
  RUN_OVER_EVENTS,
  transitionOperation,
  type TransitionResult,
} from './transition';
export { webhookSecretAad, webhookSignature } from './webhook-signing';
export type { JsonColumn, OperationColumns } from './columns';
