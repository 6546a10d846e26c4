import { html, nothing } from 'lit';
import { repeat } from 'lit/directives/repeat.js';

import { api, type Settlement, type Store, type Terminal } from '../api';
import { type DaySummary, dayLabel, lastDayOf, monthGrid, monthLabel, monthOf, shiftDay, shiftMonth, summarizeDay } from '../calendar';
import { ConsoleElement } from '../base';
import { FreshReads } from '../fresh-reads';
import { settlementsView } from '../routes';
import { may, notify, reportError, shell } from '../state';

const WEEKDAYS = [
  ['Mon', 'Monday'],
  ['Tue', 'Tuesday'],
  ['Wed', 'Wednesday'],
  ['Thu', 'Thursday'],
  ['Fri', 'Friday'],
  ['Sat', 'Saturday'],
  ['Sun', 'Sunday'],
] as const;

const LEGEND: { state: DaySummary['state']; text: string }[] = [
  { state: 'settled', text: 'settled: every terminal closed its day, totals agree' },
  { state: 'discrepancies', text: 'discrepancies: our totals and a terminal’s differ' },
  { state: 'running', text: 'in progress: pending or running' },
  { state: 'failed', text: 'failed: a terminal did not close its day' },
  { state: 'none', text: 'no settlement' },
];

const today = () => new Date().toISOString().slice(0, 10);

/**
 * Settlements as a month calendar per store: each business day's state in colour and words. The grid is
 * an ARIA grid: one day is in the tab order, the arrow keys move by day and week, Page Up / Page Down by
 * month, Home / End to the week's ends; Enter or a click opens the day's settlements (state, discrepancy
 * report, CSV, re-run). Store, month and day are in the URL (`#/settlements?store=…&month=…&day=…`).
 */
export class SettlementsPage extends ConsoleElement {
  params = new URLSearchParams();
  stores: Store[] = [];
  terminals: Terminal[] = [];
  storeId = '';
  month = monthOf(today());
  /** The day that is in the tab order (roving tabindex). */
  focusDay = today();
  openDay: string | null = null;
  settlements: Settlement[] = [];
  loading = true;
  private moveFocus = false;
  private unsubscribe?: () => void;
  private readonly reads = new FreshReads();

  override connectedCallback(): void {
    super.connectedCallback();
    // Only a month and a day that exist (settlementsView): a hand-typed or hostile link cannot break the page.
    const view = settlementsView(this.params);
    const day = view.day || null;
    this.month = view.month || (day ? monthOf(day) : this.month);
    this.focusDay = day ?? (this.month === monthOf(today()) ? today() : `${this.month}-01`);
    this.openDay = day;
    this.unsubscribe = shell.stream.onEvent((e) => {
      if (e.type.startsWith('settlement.') && (!this.storeId || e.data.storeId === this.storeId)) void this.load();
    });
    void this.init();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  private async init(): Promise<void> {
    try {
      const [stores, terminals] = await Promise.all([api.stores(), api.terminals()]);
      const wanted = settlementsView(this.params).store;
      const storeId = stores.find((s) => s.id === wanted)?.id ?? [...stores].sort((a, b) => a.name.localeCompare(b.name))[0]?.id ?? '';
      this.set({ stores, terminals, storeId });
      await this.load();
    } catch (err) {
      this.set({ loading: false });
      reportError(err);
    }
  }

  private async load(): Promise<void> {
    if (!this.storeId) return this.set({ loading: false, settlements: [] });
    const { storeId, month } = this;
    try {
      // A later read (another store or month, or a later event's) wins over this answer.
      await this.reads.load(
        () => api.allSettlements({ storeId, from: `${month}-01`, to: lastDayOf(month) }),
        (settlements) => this.set({ settlements, loading: false }),
      );
    } catch (err) {
      this.set({ loading: false });
      reportError(err);
    }
  }

  /** Keeps the choice in the URL (no new history entry, no hashchange: the page stays). */
  private remember(): void {
    const params = new URLSearchParams({ store: this.storeId, month: this.month });
    if (this.openDay) params.set('day', this.openDay);
    history.replaceState(null, '', `#/settlements?${params.toString()}`);
  }

  private showMonth(month: string, focusDay = `${month}-01`): void {
    this.set({ month, focusDay, settlements: [], loading: true });
    this.remember();
    void this.load();
  }

  private chooseStore(storeId: string): void {
    this.set({ storeId, openDay: null, settlements: [], loading: true });
    this.remember();
    void this.load();
  }

  private open(day: string): void {
    this.set({ openDay: day, focusDay: day });
    this.remember();
  }

  private onKey(e: KeyboardEvent): void {
    const moves: Record<string, () => string> = {
      ArrowLeft: () => shiftDay(this.focusDay, -1),
      ArrowRight: () => shiftDay(this.focusDay, 1),
      ArrowUp: () => shiftDay(this.focusDay, -7),
      ArrowDown: () => shiftDay(this.focusDay, 7),
      Home: () => shiftDay(this.focusDay, -((new Date(`${this.focusDay}T00:00:00Z`).getUTCDay() + 6) % 7)),
      End: () => shiftDay(this.focusDay, 6 - ((new Date(`${this.focusDay}T00:00:00Z`).getUTCDay() + 6) % 7)),
      PageUp: () => `${shiftMonth(this.month, -1)}-01`,
      PageDown: () => `${shiftMonth(this.month, 1)}-01`,
    };
    const move = moves[e.key];
    if (!move) return;
    e.preventDefault();
    const day = move();
    this.moveFocus = true;
    if (monthOf(day) !== this.month) this.showMonth(monthOf(day), day);
    else this.set({ focusDay: day });
  }

  protected override updated(): void {
    if (!this.moveFocus) return;
    const cell = this.querySelector<HTMLButtonElement>(`button[data-day="${this.focusDay}"]`);
    if (cell) {
      this.moveFocus = false;
      cell.focus();
    }
  }

  override render() {
    const store = this.stores.find((s) => s.id === this.storeId);
    const byDay = new Map<string, Settlement[]>();
    for (const s of this.settlements) byDay.set(s.businessDate, [...(byDay.get(s.businessDate) ?? []), s]);
    const summary = (day: string) => summarizeDay(byDay.get(day) ?? []);
    const title = `${store?.name ?? 'Store'}, ${monthLabel(this.month)}`;
    return html`
      <h1 tabindex="-1">Settlements</h1>
      <form class="filters" aria-label="Choose the store and month" @submit=${(e: Event) => e.preventDefault()}>
        <label
          >Store
          <select @change=${(e: Event) => this.chooseStore((e.target as HTMLSelectElement).value)}>
            ${this.stores.map((s) => html`<option value=${s.id} ?selected=${s.id === this.storeId}>${s.name}</option>`)}
          </select></label
        >
        <button type="button" @click=${() => this.showMonth(shiftMonth(this.month, -1))}>← Previous month</button>
        <strong aria-live="polite" data-testid="calendar-month">${monthLabel(this.month)}</strong>
        <button type="button" @click=${() => this.showMonth(shiftMonth(this.month, 1))}>Next month →</button>
        <button type="button" @click=${() => this.showMonth(monthOf(today()), today())}>This month</button>
      </form>
      ${this.stores.length === 0 && !this.loading ? html`<p>No store yet.</p>` : nothing} ${this.loading ? html`<p aria-live="polite">Loading…</p>` : nothing}
      <table class="calendar" role="grid" aria-label="Settlements of ${title}" @keydown=${(e: KeyboardEvent) => this.onKey(e)}>
        <thead>
          <tr>
            ${WEEKDAYS.map(([short, long]) => html`<th scope="col" abbr=${long}>${short}</th>`)}
          </tr>
        </thead>
        <tbody>
          ${monthGrid(this.month).map(
            (week) =>
              html`<tr>
                ${week.map((day) => (day ? this.renderDay(day, summary(day)) : html`<td role="gridcell" class="pad"></td>`))}
              </tr>`,
          )}
        </tbody>
      </table>
      <ul class="legend" aria-label="Legend">
        ${LEGEND.map((l) => html`<li><span class="swatch day-${l.state}" aria-hidden="true"></span>${l.text}</li>`)}
      </ul>
      ${this.openDay && monthOf(this.openDay) === this.month ? this.renderOpenDay(this.openDay, summary(this.openDay), store) : nothing}
    `;
  }

  private renderDay(day: string, s: DaySummary) {
    const terminals = s.latest.length > 1 ? ` · ${s.latest.length} terminals` : '';
    return html`<td role="gridcell" aria-selected=${day === this.openDay ? 'true' : 'false'}>
      <button
        type="button"
        class="day day-${s.state}"
        data-day=${day}
        data-state=${s.state}
        tabindex=${day === this.focusDay ? 0 : -1}
        aria-label="${dayLabel(day)}: ${s.text}${terminals}"
        @click=${() => this.open(day)}
        @focus=${() => (this.focusDay = day)}
      >
        <span class="num" aria-hidden="true">${Number(day.slice(8))}</span>
        <span class="what" aria-hidden="true">${s.state === 'none' ? '—' : s.text}</span>
      </button>
    </td>`;
  }

  private renderOpenDay(day: string, s: DaySummary, store: Store | undefined) {
    const name = (id: string) => this.terminals.find((t) => t.id === id)?.name ?? id.slice(0, 8);
    return html`<section class="store" aria-labelledby="open-day" data-testid="open-day">
      <h2 id="open-day">${dayLabel(day)} · ${store?.name ?? ''} <span class="badge day-${s.state}">${s.text}</span></h2>
      ${s.latest.length === 0 ? html`<p>No settlement of this store on this business day.</p>` : nothing}
      ${repeat(
        s.latest,
        (x) => x.id,
        (x) =>
          html`<po-settlement
            .settlementId=${x.id}
            .terminalName=${name(x.terminalId)}
            .embedded=${true}
            @settlement-rerun=${(e: CustomEvent<Settlement>) => this.set({ settlements: [...this.settlements, e.detail] })}
          ></po-settlement>`,
      )}
    </section>`;
  }
}

/**
 * One settlement: state, outcome, batches, the discrepancy report (CSV download) and a re-run of the day.
 * A page of its own at `#/settlements/<id>`, or embedded in the calendar's open day.
 */
export class SettlementPage extends ConsoleElement {
  settlementId = '';
  /** Embedded in the calendar: a section with an h3 and no back link. */
  embedded = false;
  terminalName = '';
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
      this.dispatchEvent(new CustomEvent('settlement-rerun', { detail: next, bubbles: true }));
    } catch (err) {
      reportError(err);
    } finally {
      this.set({ busy: false });
    }
  }

  override render() {
    const s = this.settlement;
    if (!s)
      return this.embedded
        ? html`<p aria-live="polite">Loading…</p>`
        : html`<h1 tabindex="-1">Settlement</h1>
            <p aria-live="polite">Loading…</p>`;
    const columns = [...new Set(s.discrepancies.flatMap((d) => Object.keys(d)))];
    const canRun = may('settlements:write');
    const headingId = `settlement-${s.id}`;
    const status = html`<span class="badge ${s.status}" data-testid="settlement-status">${s.status}</span>`;
    const body = html`
      <dl class="kv">
        <dt>Outcome</dt>
        <dd data-testid="settlement-outcome">${s.outcome ?? '—'}</dd>
        <dt>Runs</dt>
        <dd>${s.attempts} attempt(s) · ${s.trigger}${s.finishedAt ? html` · finished ${new Date(s.finishedAt).toLocaleString()}` : nothing}</dd>
        <dt>Batches</dt>
        <dd>${s.batches.length === 0 ? '—' : s.batches.map((b) => b.batchNumber ?? '?').join(', ')}</dd>
      </dl>
      <div class="actions">
        <button type="button" @click=${() => this.download()} data-testid="csv">Download discrepancies (CSV)</button>
        <button type="button" ?disabled=${!canRun || this.busy} title=${canRun ? '' : 'Needs an operate or admin key'} @click=${() => this.rerun()}>
          Re-run the day
        </button>
      </div>
      <p>
        <strong>Discrepancies (<span data-testid="discrepancy-count">${s.discrepancies.length}</span>)</strong>
      </p>
      ${
        s.discrepancies.length === 0
          ? html`<p>Our totals and the terminal's agree.</p>`
          : html`<table class="grid" data-testid="discrepancies" aria-label="Discrepancies of ${s.businessDate}">
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
    `;
    if (this.embedded)
      return html`<section class="settlement" data-settlement=${s.id} aria-labelledby=${headingId}>
        <h3 id=${headingId}>${this.terminalName || s.terminalId.slice(0, 8)} ${status}</h3>
        <p><a href="#/settlements/${s.id}">Open as a page</a> · <a href="#/terminals/${s.terminalId}">terminal</a></p>
        ${body}
      </section>`;
    return html`
      <h1 tabindex="-1">Settlement ${s.businessDate} ${status}</h1>
      <p>
        <a href="#/settlements?store=${s.storeId}&day=${s.businessDate}">← Calendar</a> · terminal
        <a href="#/terminals/${s.terminalId}">${s.terminalId.slice(0, 8)}</a>
      </p>
      ${body}
    `;
  }
}
