import { batchNets } from './report';
import type { Totals } from './totals';

const totals = (net: number): Totals => ({ protocol: 'JOINPROTO', buckets: {}, net, transactions: [] }) as unknown as Totals;

describe('batchNets: the nets of every batch a settlement reconciled, as the day summary counts them', () => {
  it('sums both sides over the batches with terminal totals, and our side of the others apart', () => {
    expect(
      batchNets([
        { ours: totals(700), terminal: totals(650) },
        { ours: totals(-300), terminal: null },
        { ours: totals(2000), terminal: totals(2000) },
        { ours: totals(500), terminal: null },
      ]),
    ).toEqual({ batchesWithoutTerminalTotals: 2, batchesOurNet: 2700, batchesTerminalNet: 2650, batchesOurNetWithoutTerminalTotals: 200 });
    expect(batchNets([])).toEqual({ batchesWithoutTerminalTotals: 0, batchesOurNet: 0, batchesTerminalNet: 0, batchesOurNetWithoutTerminalTotals: 0 });
  });
});
