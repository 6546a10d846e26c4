import { html, nothing } from 'lit';

import { api, type Schemas, type WalletPayment } from '../api';

type WalletState = Schemas['WalletPaymentState'];
const STATES: readonly WalletState[] = [
  'pending',
  'processing',
  'requires_action',
  'authorized',
  'partially_captured',
  'approved',
  'partially_refunded',
  'refunded',
  'canceled',
  'declined',
  'rejected',
  'unknown',
];
import { ConsoleElement } from '../base';
import { may, money, notify, parseAmount, reportError, shell } from '../state';

/** Wallet payments (Apple / Google / Samsung Pay through Assist): list, detail, capture, cancel and refund. */
export class WalletPage extends ConsoleElement {
  payments: WalletPayment[] = [];
  selected: WalletPayment | null = null;
  state: WalletState | '' = '';
  loading = true;
  busy = false;
  /** Bumped by every load, selection and action: an answer read before a later one is dropped. */
  private generation = 0;
  private unsubscribe?: () => void;

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = shell.stream.onEvent((e) => {
      if (e.type.startsWith('wallet_payment.')) void this.load();
    });
    void this.load();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  private async load(): Promise<void> {
    const generation = ++this.generation;
    const selectedId = this.selected?.id;
    try {
      const page = await api.walletPayments({ state: this.state || undefined });
      const selected = selectedId ? await api.walletPayment(selectedId) : null;
      // A stream event during an action starts a load whose answer may predate the action's.
      if (generation === this.generation) this.set({ payments: page.data, selected, loading: false });
    } catch (err) {
      this.set({ loading: false });
      reportError(err);
    }
  }

  private async act(kind: 'capture' | 'cancel', form: HTMLFormElement): Promise<void> {
    const text = (form.elements.namedItem('amount') as HTMLInputElement).value;
    const amount = text.trim() ? parseAmount(text) : undefined;
    if (amount === null) return notify('error', 'Enter a positive amount, or leave it empty for the whole remainder');
    this.set({ busy: true });
    try {
      const p = this.selected!;
      const next = kind === 'capture' ? await api.captureWallet(p.id, amount) : await api.cancelWallet(p.id, amount);
      notify('info', `${kind === 'capture' ? 'Captured' : 'Cancelled / refunded'}: payment ${next.orderNumber} is ${next.state}`);
      this.generation++;
      this.set({ selected: next });
      void this.load();
    } catch (err) {
      reportError(err);
    } finally {
      this.set({ busy: false });
    }
  }

  override render() {
    const p = this.selected;
    const canWrite = may('wallet:write');
    return html`
      <h1 tabindex="-1">Wallet payments</h1>
      <form class="filters" aria-label="Filter wallet payments" @submit=${(e: Event) => e.preventDefault()}>
        <label
          >State
          <select @change=${(e: Event) => (this.set({ state: (e.target as HTMLSelectElement).value as WalletState | '' }), void this.load())}>
            <option value="">any</option>
            ${STATES.map((s) => html`<option value=${s}>${s}</option>`)}
          </select></label
        >
      </form>
      ${this.loading ? html`<p aria-live="polite">Loading…</p>` : nothing}
      ${!this.loading && this.payments.length === 0 ? html`<p>No wallet payment.</p>` : nothing}
      ${
        this.payments.length
          ? html`<table class="grid">
              <thead>
                <tr>
                  <th scope="col">Order</th>
                  <th scope="col">Amount</th>
                  <th scope="col">State</th>
                  <th scope="col">Wallet</th>
                  <th scope="col">Captured / refunded</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                ${this.payments.map(
                  (w) =>
                    html`<tr>
                      <td><button type="button" class="link" @click=${() => (this.generation++, this.set({ selected: w }))}>${w.orderNumber}</button></td>
                      <td>${money(w.amount, w.currency)}</td>
                      <td><span class="badge ${w.state}">${w.state}</span></td>
                      <td>${w.tokenType}${w.twoStage ? ' · two-stage' : ''}</td>
                      <td>${money(w.amounts.captured)} / ${money(w.amounts.refunded)}</td>
                      <td>${new Date(w.createdAt).toLocaleString()}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
          : nothing
      }
      ${
        p
          ? html`<section aria-labelledby="wp-detail" class="store">
              <h2 id="wp-detail">Order ${p.orderNumber} <span class="badge ${p.state}" data-testid="wallet-state">${p.state}</span></h2>
              <dl class="kv">
                <dt>Amount</dt>
                <dd>${money(p.amount, p.currency)}</dd>
                <dt>Authorised / captured / released / refunded</dt>
                <dd>${money(p.amounts.authorized)} / ${money(p.amounts.captured)} / ${money(p.amounts.released)} / ${money(p.amounts.refunded)}</dd>
                <dt>Card</dt>
                <dd>${p.maskedPan ?? '—'}</dd>
              </dl>
              ${
                p.operations.length
                  ? html`<table class="grid" aria-label="Operations on order ${p.orderNumber}" data-testid="wallet-operations">
                      <thead>
                        <tr>
                          <th scope="col">Operation</th>
                          <th scope="col">Amount</th>
                          <th scope="col">State</th>
                          <th scope="col">When</th>
                        </tr>
                      </thead>
                      <tbody>
                        ${p.operations.map(
                          (o) =>
                            html`<tr>
                              <td>${o.kind.replace(/_/g, ' ')}</td>
                              <td>${money(o.amount, o.currency)}</td>
                              <td><span class="badge ${o.state === 'succeeded' ? 'approved' : o.state}">${o.state}</span></td>
                              <td>${new Date(o.createdAt).toLocaleString()}</td>
                            </tr>`,
                        )}
                      </tbody>
                    </table>`
                  : nothing
              }
              <form class="filters" @submit=${(e: SubmitEvent) => e.preventDefault()}>
                <label>Amount (empty = all) <input name="amount" inputmode="decimal" autocomplete="off" /></label>
                <button
                  type="button"
                  ?disabled=${!canWrite || this.busy || !p.twoStage}
                  title=${canWrite ? '' : 'Needs an operate or admin key'}
                  @click=${(e: Event) => this.act('capture', (e.target as HTMLElement).closest('form')!)}
                >
                  Capture
                </button>
                <button
                  type="button"
                  ?disabled=${!canWrite || this.busy}
                  title=${canWrite ? '' : 'Needs an operate or admin key'}
                  @click=${(e: Event) => this.act('cancel', (e.target as HTMLElement).closest('form')!)}
                >
                  Cancel / refund
                </button>
              </form>
            </section>`
          : nothing
      }
    `;
  }
}
