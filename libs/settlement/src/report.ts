import type { CloseDayOutcomeKind } from './close-day';
import { csvRow } from './csv';
import type { Discrepancy } from './reconcile';
import type { Totals } from './totals';

/** One batch a settlement reconciled: the operations between two close-days of the terminal (docs/reconciliation.md). */
export interface BatchReport {
  /** The close-day operation that ended the batch (its boundary); null for a batch the terminal closed on its own. */
  closeDayOperationId: string | null;
  /**
   * `settlement`: this settlement's own close-day (the last batch), or an earlier one of a settlement that FAILED (gave
   * up while its outcome was unknown; recovery found it later): its batch is reconciled here; `operations_api`: a
   * settlement / report_z operation sent through the API; `terminal`: closed on the terminal itself, observed from its
   * shift number (no totals: listed, not compared).
   */
  closedBy: 'settlement' | 'operations_api' | 'terminal';
  closedAt: string | null;
  outcome: CloseDayOutcomeKind | 'closed_on_terminal';
  batchNumber: string | null;
  /** Our operations of the batch (marked with this settlement's id). */
  operations: number;
  ours: Totals;
  terminal: Totals | null;
  discrepancies: number;
}

/**
 * The nets of the batches a settlement reconciled, as the day's summary counts them (the gateway's `batchFigures`):
 * our side and the terminal's over the batches whose terminal totals are known, our side of the others apart. A
 * settlement's `ourTotals` / `terminalTotals` are its own batch's only; these cover every batch it reconciled, each
 * batch being in exactly one settlement's, so summed over a day's `settlement.completed` events they are the summary.
 */
export interface BatchNets {
  /** Of the batches, those without terminal totals (`closed_without_totals`, `closed_on_terminal`). */
  batchesWithoutTerminalTotals: number;
  /** Our signed net, minor units, over the batches with terminal totals. */
  batchesOurNet: number;
  /** The terminals' signed net, minor units, over the same batches. */
  batchesTerminalNet: number;
  /** Our signed net, minor units, of the batches without terminal totals. */
  batchesOurNetWithoutTerminalTotals: number;
}

export function batchNets(batches: readonly Pick<BatchReport, 'ours' | 'terminal'>[]): BatchNets {
  const nets: BatchNets = { batchesWithoutTerminalTotals: 0, batchesOurNet: 0, batchesTerminalNet: 0, batchesOurNetWithoutTerminalTotals: 0 };
  for (const batch of batches) {
    if (batch.terminal === null) {
      nets.batchesWithoutTerminalTotals += 1;
      nets.batchesOurNetWithoutTerminalTotals += batch.ours.net;
    } else {
      nets.batchesOurNet += batch.ours.net;
      nets.batchesTerminalNet += batch.terminal.net;
    }
  }
  return nets;
}

/** A discrepancy with the batch it was found in. */
export type BatchDiscrepancy = Discrepancy & { batch: string };

export interface DiscrepancyReport {
  settlementId: string;
  terminalId: string;
  storeId: string;
  businessDate: string;
  status: string;
  outcome: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  batches: BatchReport[];
  discrepancies: BatchDiscrepancy[];
}

/** One CSV row per discrepancy, in stored order. */
export interface DiscrepancyRow {
  batch: string;
  kind: Discrepancy['kind'];
  bucket: string | null;
  direction: string | null;
  ours: number | null;
  terminal: number | null;
  amount: number | null;
  operationId: string | null;
  rrn: string | null;
  reference: string | null;
  detail: string | null;
}

export const DISCREPANCY_CSV_COLUMNS = [
  'settlement_id',
  'terminal_id',
  'business_date',
  'batch',
  'kind',
  'bucket',
  'direction',
  'ours',
  'terminal',
  'amount',
  'operation_id',
  'rrn',
  'reference',
  'detail',
] as const;

export function discrepancyRows(discrepancies: readonly BatchDiscrepancy[]): DiscrepancyRow[] {
  return discrepancies.map((d) => {
    const row: DiscrepancyRow = {
      batch: d.batch,
      kind: d.kind,
      bucket: null,
      direction: null,
      ours: null,
      terminal: null,
      amount: null,
      operationId: null,
      rrn: null,
      reference: null,
      detail: null,
    };
    switch (d.kind) {
      case 'count_mismatch':
        return { ...row, bucket: d.bucket, direction: d.direction, ours: d.ours, terminal: d.terminal };
      case 'amount_mismatch':
        return { ...row, bucket: d.bucket, ours: d.ours, terminal: d.terminal, operationId: d.operationId ?? null, rrn: d.rrn ?? null };
      case 'missing_on_our_side':
        return { ...row, bucket: d.bucket, amount: d.amount, rrn: d.rrn ?? null, reference: d.reference ?? null };
      case 'missing_on_terminal':
        return { ...row, bucket: d.bucket, amount: d.amount, operationId: d.operationId, rrn: d.rrn ?? null };
      case 'host_mismatch':
      case 'terminal_totals_unavailable':
        return { ...row, detail: d.detail };
    }
  });
}

/** RFC 4180 CSV of a settlement's discrepancies (header row always present; no rows = no discrepancy). */
export function discrepancyReportCsv(report: Pick<DiscrepancyReport, 'settlementId' | 'terminalId' | 'businessDate' | 'discrepancies'>): string {
  let out = csvRow(DISCREPANCY_CSV_COLUMNS);
  for (const r of discrepancyRows(report.discrepancies)) {
    out += csvRow([
      report.settlementId,
      report.terminalId,
      report.businessDate,
      r.batch,
      r.kind,
      r.bucket,
      r.direction,
      r.ours,
      r.terminal,
      r.amount,
      r.operationId,
      r.rrn,
      r.reference,
      r.detail,
    ]);
  }
  return out;
}
