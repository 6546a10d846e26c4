import 'uplot/dist/uPlot.min.css';

import { html } from 'lit';
import uPlot from 'uplot';

import { api, type OperationStats } from '../api';
import { ConsoleElement } from '../base';
import { reportError } from '../state';

const COLORS = ['#0a58ca', '#cf222e', '#1a7f37', '#9a6700', '#8250df', '#bc4c00'];

/** Plots over the last 24 h (GET /v1/stats/operations, aggregated in PostgreSQL): uPlot charts plus the same numbers as tables. */
export class PlotsPage extends ConsoleElement {
  stats: OperationStats | null = null;
  private charts: uPlot[] = [];

  override connectedCallback(): void {
    super.connectedCallback();
    api.operationStats(24, 60).then((stats) => this.set({ stats }), reportError);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.charts.forEach((c) => c.destroy());
    this.charts = [];
  }

  protected override updated(): void {
    const s = this.stats;
    if (!s || this.charts.length) return;
    const xs = s.buckets.map((b) => Date.parse(b.start) / 1000);
    const width = Math.max(320, (this.querySelector('.plot')?.clientWidth ?? 800) - 8);
    const chart = (id: string, series: { label: string; values: (number | null)[] }[], unit: string, range?: [number, number]) => {
      const el = this.querySelector<HTMLElement>(`#${id}`)!;
      const opts: uPlot.Options = {
        width,
        height: 220,
        series: [{}, ...series.map((x, i) => ({ label: x.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false }))],
        axes: [{}, { label: unit }],
        ...(range && { scales: { y: { range } } }),
      };
      this.charts.push(new uPlot(opts, [xs, ...series.map((x) => x.values)] as uPlot.AlignedData, el));
    };
    chart(
      'plot-approval',
      [{ label: 'approval rate %', values: s.buckets.map((b) => (b.approvalRate === null ? null : Math.round(b.approvalRate * 1000) / 10)) }],
      '%',
    );
    chart('plot-rate', [{ label: 'operations / min', values: s.buckets.map((b) => b.perMinute) }], 'per minute');
    const protocols = [...new Set(s.timings.map((t) => t.protocol))].sort();
    const timing = (p: string, key: 'p50Ms' | 'p99Ms') =>
      xs.map((x) => s.timings.find((t) => t.protocol === p && Date.parse(t.start) / 1000 === x)?.[key] ?? null);
    chart(
      'plot-timing',
      protocols.flatMap((p) => [
        { label: `${p} p50`, values: timing(p, 'p50Ms') },
        { label: `${p} p99`, values: timing(p, 'p99Ms') },
      ]),
      'ms',
    );
    chart('plot-offline', [{ label: 'terminals went offline', values: s.buckets.map((b) => b.terminalsWentOffline) }], 'count');
  }

  override render() {
    const s = this.stats;
    const total = s?.buckets.reduce((n, b) => n + b.total, 0) ?? 0;
    return html`
      <h1 tabindex="-1">Plots (last 24 h)</h1>
      ${s ? html`<p data-testid="plots-total">${total} operations since ${new Date(s.from).toLocaleString()}</p>` : html`<p aria-live="polite">Loading…</p>`}
      <section aria-labelledby="h-approval" class="plot">
        <h2 id="h-approval">Approval rate</h2>
        <div id="plot-approval" role="img" aria-label="Approval rate per hour"></div>
      </section>
      <section aria-labelledby="h-rate" class="plot">
        <h2 id="h-rate">Operations per minute</h2>
        <div id="plot-rate" role="img" aria-label="Operations per minute, per hour"></div>
      </section>
      <section aria-labelledby="h-timing" class="plot">
        <h2 id="h-timing">Terminal time p50 / p99 per protocol</h2>
        <div id="plot-timing" role="img" aria-label="Terminal time percentiles per protocol"></div>
      </section>
      <section aria-labelledby="h-offline" class="plot">
        <h2 id="h-offline">Terminals going offline</h2>
        <div id="plot-offline" role="img" aria-label="Terminals going offline per hour"></div>
      </section>
      ${
        s
          ? html`<details>
              <summary>The numbers as a table</summary>
              <table class="grid">
                <thead>
                  <tr>
                    <th scope="col">Hour</th>
                    <th scope="col">Operations</th>
                    <th scope="col">Approved</th>
                    <th scope="col">Declined</th>
                    <th scope="col">Unknown</th>
                    <th scope="col">Went offline</th>
                  </tr>
                </thead>
                <tbody>
                  ${s.buckets
                    .filter((b) => b.total || b.terminalsWentOffline)
                    .map(
                      (b) =>
                        html`<tr>
                          <td>${new Date(b.start).toLocaleString()}</td>
                          <td>${b.total}</td>
                          <td>${b.approved}</td>
                          <td>${b.declined}</td>
                          <td>${b.unknown}</td>
                          <td>${b.terminalsWentOffline}</td>
                        </tr>`,
                    )}
                </tbody>
              </table>
            </details>`
          : ''
      }
    `;
  }
}
