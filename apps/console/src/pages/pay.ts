import { html, nothing } from 'lit';

import { api, type NewOperation, type Operation, type Terminal } from '../api';
import { ConsoleElement } from '../base';
import { may, parseAmount, reportError, role } from '../state';

const TYPES: readonly NewOperation['type'][] = ['purchase', 'purchase_with_cashback', 'preauth', 'sbp_payment', 'cash_withdrawal'];

/** Take a payment on any terminal (support staff, demos), then follow it live. */
export class PayPage extends ConsoleElement {
  preselect = '';
  terminals: Terminal[] = [];
  started: Operation | null = null;
  busy = false;
  amountError = '';

  override connectedCallback(): void {
    super.connectedCallback();
    api.terminals().then((terminals) => this.set({ terminals }), reportError);
  }

  private async submit(e: SubmitEvent): Promise<void> {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const field = (name: string) => (form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement).value;
    const amount = parseAmount(field('amount'));
    if (amount === null) return this.set({ amountError: 'Enter a positive amount, e.g. 15.00' });
    const cashback = field('type') === 'purchase_with_cashback' ? parseAmount(field('cashback')) : null;
    this.set({ busy: true, amountError: '', started: null });
    try {
      const body: NewOperation = {
        type: field('type') as NewOperation['type'],
        amount,
        currency: field('currency') || undefined,
        ...(cashback ? { cashbackAmount: cashback } : {}),
      };
      const op = await api.startOperation(field('terminal'), body);
      this.set({ started: op });
    } catch (err) {
      reportError(err);
    } finally {
      this.set({ busy: false });
    }
  }

  override render() {
    const allowed = may('operations:write');
    const sorted = [...this.terminals].sort((a, b) => Number(b.status === 'online') - Number(a.status === 'online') || a.name.localeCompare(b.name));
    return html`
      <h1 tabindex="-1">Take a payment</h1>
      ${
        allowed
          ? nothing
          : html`<p class="notice info" data-testid="pay-forbidden">
              Your key has the <code>${role()}</code> role: taking a payment needs an <code>operate</code> or <code>admin</code> key.
            </p>`
      }
      <form class="pay" @submit=${(e: SubmitEvent) => this.submit(e)}>
        <fieldset ?disabled=${!allowed || this.busy}>
          <legend>Payment</legend>
          <label
            >Terminal
            <select name="terminal" required>
              ${sorted.map((t) => html`<option value=${t.id} ?selected=${t.id === this.preselect}>${t.name} (${t.protocol}, ${t.status})</option>`)}
            </select></label
          >
          <label
            >Type
            <select name="type">
              ${TYPES.map((t) => html`<option value=${t}>${t.replace(/_/g, ' ')}</option>`)}
            </select></label
          >
          <label
            >Amount
            <input
              name="amount"
              inputmode="decimal"
              required
              autocomplete="off"
              placeholder="15.00"
              aria-describedby="amount-error"
              aria-invalid=${this.amountError ? 'true' : 'false'}
          /></label>
          <span id="amount-error" class="error" role="status">${this.amountError}</span>
          <label>Cash back (purchase with cashback) <input name="cashback" inputmode="decimal" autocomplete="off" placeholder="0.00" /></label>
          <label>Currency <input name="currency" value="RUB" pattern="[A-Z]{3}" maxlength="3" size="4" /></label>
          <button type="submit" data-testid="pay-submit">${this.busy ? 'Starting…' : 'Start payment'}</button>
        </fieldset>
      </form>
      ${
        this.started
          ? html`<section aria-label="Payment in progress" aria-live="polite"><po-operation .operation=${this.started}></po-operation></section>`
          : nothing
      }
    `;
  }
}
