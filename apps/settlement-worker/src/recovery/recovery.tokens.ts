/** Job scheduler id of the repeatable `operation.recovery_sweep`. */
export const RECOVERY_SWEEP_SCHEDULER_ID = 'operations-recovery-sweep';
