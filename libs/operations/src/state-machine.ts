import type { FinalState, OperationType } from '@payorch/drivers';

/** DB spelling of the states (Prisma enum OperationState). */
export type OperationStateName = 'PENDING' | 'SENT' | 'IN_PROGRESS' | 'APPROVED' | 'DECLINED' | 'CANCELED' | 'FAILED' | 'UNKNOWN';
/** API spelling. */
export type OperationStateApi = Lowercase<OperationStateName>;

export const FINAL_STATES: readonly OperationStateName[] = ['APPROVED', 'DECLINED', 'CANCELED', 'FAILED'];
/** The states of an operation that is not over yet (its terminal may still be working on it, or its outcome is unknown). */
export const OPEN_STATES: readonly OperationStateName[] = ['PENDING', 'SENT', 'IN_PROGRESS', 'UNKNOWN'];

/**
 * Every allowed transition, and why it happens. Anything else is refused. `IN_PROGRESS → IN_PROGRESS`
 * is a sub-status change (waiting_card → waiting_pin …), `UNKNOWN → UNKNOWN` an inconclusive recovery attempt (or
 * the give-up flag). `UNKNOWN → final` is a recovery. Every write goes through `transitionOperation` (transition.ts),
 * which refuses any pair not listed here.
 */
export const TRANSITIONS: Readonly<Record<OperationStateName, Readonly<Partial<Record<OperationStateName, string>>>>> = {
  PENDING: {
    SENT: 'an executor claimed the operation (once: conditional update)',
    FAILED: 'the command could not be delivered to the terminal (nothing sent)',
    CANCELED: 'canceled before it was sent',
  },
  SENT: {
    IN_PROGRESS: 'the terminal reported progress',
    APPROVED: 'terminal outcome',
    DECLINED: 'terminal outcome',
    CANCELED: 'terminal outcome',
    FAILED: 'terminal outcome, or the command provably was not sent',
    UNKNOWN: 'the outcome was lost (timeout, link drop, crash)',
  },
  IN_PROGRESS: {
    IN_PROGRESS: 'sub-status change',
    APPROVED: 'terminal outcome',
    DECLINED: 'terminal outcome',
    CANCELED: 'terminal outcome',
    FAILED: 'terminal outcome',
    UNKNOWN: 'the outcome was lost (timeout, link drop, crash)',
  },
  UNKNOWN: {
    UNKNOWN: 'still unknown: an inconclusive recovery attempt, or recovery gave up (needs a human)',
    APPROVED: 'recovered',
    DECLINED: 'recovered',
    CANCELED: 'recovered',
    FAILED: 'recovered: the terminal did not perform it',
  },
  APPROVED: {},
  DECLINED: {},
  CANCELED: {},
  FAILED: {},
};

export function canTransition(from: OperationStateName, to: OperationStateName): boolean {
  return TRANSITIONS[from][to] !== undefined;
}

/** The states from which `to` may be reached: the `WHERE state IN (…)` of a conditional update. */
export function sourcesOf(to: OperationStateName): OperationStateName[] {
  return (Object.keys(TRANSITIONS) as OperationStateName[]).filter((from) => canTransition(from, to));
}

export const isFinal = (state: OperationStateName): boolean => FINAL_STATES.includes(state);

export function stateOfOutcome(state: FinalState): OperationStateName {
  return state.toUpperCase() as OperationStateName;
}

export const toApiState = (state: OperationStateName): OperationStateApi => state.toLowerCase() as OperationStateApi;
export const fromApiState = (state: OperationStateApi): OperationStateName => state.toUpperCase() as OperationStateName;

/** Prisma enum OperationType ↔ neutral type. */
export type OperationTypeName = Uppercase<OperationType>;
export const toDbType = (type: OperationType): OperationTypeName => type.toUpperCase() as OperationTypeName;
export const fromDbType = (type: string): OperationType => type.toLowerCase() as OperationType;
