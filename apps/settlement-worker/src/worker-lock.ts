/**
 * BullMQ worker options for queues whose jobs a killed worker must hand back fast (issue 15: final within 30 s of
 * a fault's end). BullMQ's defaults (lock 30 s, stalled check every 30 s) leave a dead worker's job active for
 * 30–60 s; with a 10 s lock and a check every 5 s it is back within ~15 s.
 *
 * A long job keeps its lock: the worker's LockManager renews the lock of every job it runs every
 * `lockDuration / 2` (5 s) on a timer, whatever the processor is awaiting (a close-day at the bank for
 * minutes, an operation followed from the delayed set). Only an event loop blocked for 10 s would lose it,
 * and our processors do I/O, not CPU work. A job run again after a lost lock is harmless: campaign steps and
 * settlements resume from their rows (a sent close-day is recovered, never sent twice).
 */
export const SHORT_LOCK = { lockDuration: 10_000, stalledInterval: 5_000 } as const;
