import { html, nothing } from 'lit';

import { api, type Settlement, type Store } from '../api';
import { ConsoleElement } from '../base';
import { may, notify, reportError } from '../state';

/** Settlements per store and business day: state and discrepancies; each opens its report. */
export class SettlementsPage extends ConsoleElement {
  stores: Store[] = [];
  settlements: Settlement[] = [];
  storeId = '';
  onlyDiscrepancies = false;
  loading = true;

  override connectedCallback(): void {
    super.connectedCallback();
    api.stores().then((stores) => this.set({ stores }), reportError);
    void this.load();
  }

  private async load(): Promise<void> {
    try {
      const page = await api.settlements({ storeId: this.storeId || undefined, hasDiscrepancies: this.onlyDiscrepancies ? 'true' : undefined });
      this.set({ settlements: page.data, loading: false });
    } catch (err) {
      this.set({ loading: false });
      reportError(err);
    }
  }

  override render() {
    const days = [...new Set(this.settlements.map((s) => s.businessDate))].sort().reverse();
    const storeName = (id: string) => this.stores.find((s) => s.id === id)?.name ?? id.slice(0, 8);
    return html`
      <h1 tabindex="-1">Settlements</h1>
      <form class="filters" aria-label="Filter settlements" @submit=${(e: Event) => e.preventDefault()}>
        <label
          >Store
          <select @change=${(e: Event) => (this.set({ storeId: (e.target as HTMLSelectElement).value }), void this.load())}>
            <option value="">all</option>
            ${this.stores.map((s) => html`<option value=${s.id}>${s.name}</option>`)}
          </select></label
        >
        <label
          ><input type="checkbox" @change=${(e: Event) => (this.set({ onlyDiscrepancies: (e.target as HTMLInputElement).checked }), void this.load())} /> Only
          with discrepancies</label
        >
      </form>
      ${this.loading ? html`<p aria-live="polite">Loading…</p>` : nothing}
      ${!this.loading && this.settlements.length === 0 ? html`<p>No settlement.</p>` : nothing}
      ${days.map(
        (day) =>
          html`<section aria-labelledby="day-${day}">
            <h2 id="day-${day}">${day}</h2>
            <table class="grid">
              <thead>
                <tr>
                  <th scope="col">Store</th>
                  <th scope="col">Terminal</th>
                  <th scope="col">State</th>
                  <th scope="col">Discrepancies</th>
                  <th scope="col">Trigger</th>
                  <th scope="col"><span class="sr-only">Open</span></th>
                </tr>
              </thead>
              <tbody>
                ${this.settlements
                  .filter((s) => s.businessDate === day)
                  .map(
                    (s) =>
                      html`<tr data-settlement=${s.id}>
                        <td>${storeName(s.storeId)}</td>
                        <td><a href="#/terminals/${s.terminalId}">${s.terminalId.slice(0, 8)}</a></td>
                        <td><span class="badge ${s.status}">${s.status}</span></td>
                        <td>${s.hasDiscrepancies ? html`<span class="badge declined">${s.discrepancies.length}</span>` : '0'}</td>
                        <td>${s.trigger}</td>
                        <td><a href="#/settlements/${s.id}">Report</a></td>
                      </tr>`,
                  )}
              </tbody>
            </table>
          </section>`,
      )}
    `;
  }
}

/** One settlement: its batches, the discrepancy report (CSV download) and a re-run of the day. */
export class SettlementPage extends ConsoleElement {
  settlementId = '';
  settlement: Settlement | null = null;
  busy = false;

  override connectedCallback(): void {
    super.connectedCallback();
    api.settlement(this.settlementId).then((settlement) => this.set({ settlement }), reportError);
  }

  private async download(): Promise<void> {
    try {
      const csv = await api.discrepanciesCsv(this.settlementId);
      const href = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
      const a = document.createElement('a');
      a.href = href;
      a.download = `settlement-${this.settlementId}-discrepancies.csv`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(href), 10_000);
    } catch (err) {
      reportError(err);
    }
  }

  private async rerun(): Promise<void> {
    const s = this.settlement!;
    this.set({ busy: true });
    try {
      const next = await api.rerunSettlement(s.terminalId, s.businessDate);
      notify('info', `Re-run started: settlement ${next.id.slice(0, 8)} is ${next.status}`);
    } catch (err) {
      reportError(err);
    } finally {
      this.set({ busy: false });
    }
  }

  override render() {
    const s = this.settlement;
    if (!s)
      return html`<h1 tabindex="-1">Settlement</h1>
        <p aria-live="polite">Loading…</p>`;
    const columns = [...new Set(s.discrepancies.flatMap((d) => Object.keys(d)))];
    const canRun = may('settlements:write');
    return html`
      <h1 tabindex="-1">Settlement ${s.businessDate} <span class="badge ${s.status}" data-testid="settlement-status">${s.status}</span></h1>
      <p>
        <a href="#/settlements">← Settlements</a> · terminal <a href="#/terminals/${s.terminalId}">${s.terminalId.slice(0, 8)}</a> · ${s.attempts} attempt(s) ·
        ${s.trigger}
      </p>
      <div class="actions">
        <button type="button" @click=${() => this.download()} data-testid="csv">Download discrepancies (CSV)</button>
        <button type="button" ?disabled=${!canRun || this.busy} title=${canRun ? '' : 'Needs an operate or admin key'} @click=${() => this.rerun()}>
          Re-run the day
        </button>
      </div>
      <section aria-labelledby="disc">
        <h2 id="disc">Discrepancies (<span data-testid="discrepancy-count">${s.discrepancies.length}</span>)</h2>
        ${
          s.discrepancies.length === 0
            ? html`<p>Our totals and the terminal's agree.</p>`
            : html`<table class="grid" data-testid="discrepancies">
                <thead>
                  <tr>
                    ${columns.map((c) => html`<th scope="col">${c}</th>`)}
                  </tr>
                </thead>
                <tbody>
                  ${s.discrepancies.map(
                    (d) =>
                      html`<tr>
                        ${columns.map((c) => html`<td>${typeof d[c] === 'object' ? JSON.stringify(d[c]) : String(d[c] ?? '')}</td>`)}
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>
    `;
  }
}
