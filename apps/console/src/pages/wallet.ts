import { html, nothing } from 'lit';

import { ApiError, api, newIdempotencyKey, type WalletOperation, type WalletPayment, type WalletResolution } from '../api';
import { ConsoleElement } from '../base';
import { normalizeErrorCode, WALLET_OPERATION_STATES, WALLET_STATES, walletHash, walletView, type WalletView } from '../routes';
import { may, money, notify, parseAmount, reportError, shell } from '../state';
import {
  actorLabel,
  BILL_NUMBER_PATTERN,
  confirmationText,
  OPERATION_VERDICTS,
  paymentVerdicts,
  type ResolutionTarget,
  type VerdictBody,
  verdictBody,
} from '../wallet-resolution';
import { WALLET_ERROR_HINTS, WALLET_ERROR_SUGGESTIONS, walletErrorHint, walletErrorText } from '../wallet-errors';

/** A verdict a person submitted and is asked to confirm; one `Idempotency-Key` for it, so confirming again after a lost answer replays. */
interface PendingVerdict {
  target: ResolutionTarget;
  body: VerdictBody;
  text: string;
  idempotencyKey: string;
}

const sameTarget = (a: ResolutionTarget | null, b: ResolutionTarget) =>
  a !== null && a.kind === b.kind && (a.kind === 'payment' || (b.kind === 'operation' && a.operationId === b.operationId));

/**
 * Wallet payments (Apple / Google / Samsung Pay through Assist): list (filters in the URL), detail, capture, cancel,
 * refund, and a person's verdict on a payment or operation whose outcome is `unknown` (shown on it afterwards).
 */
export class WalletPage extends ConsoleElement {
  /** The route's query (`#/wallet?state=…&errorCode=…&operationState=…&payment=…`), read once when the page opens. */
  params = new URLSearchParams();
  payments: WalletPayment[] = [];
  selected: WalletPayment | null = null;
  view: WalletView = { state: '', errorCode: '', operationState: '', payment: '' };
  loading = true;
  busy = false;
  /** The open resolution form, and the verdict waiting for its confirmation. */
  resolving: ResolutionTarget | null = null;
  confirming: PendingVerdict | null = null;
  /** Bumped by every load, selection and action: an answer read before a later one is dropped. */
  private generation = 0;
  private unsubscribe?: () => void;

  override connectedCallback(): void {
    super.connectedCallback();
    this.view = walletView(this.params);
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
    const selectedId = this.selected?.id ?? (this.view.payment || undefined);
    const { state, errorCode, operationState } = this.view;
    try {
      const page = await api.walletPayments({ state: state || undefined, errorCode: errorCode || undefined, operationState: operationState || undefined });
      const selected = selectedId ? await api.walletPayment(selectedId) : null;
      // A stream event during an action starts a load whose answer may predate the action's.
      if (generation === this.generation) this.set({ payments: page.data, selected, loading: false });
    } catch (err) {
      this.set({ loading: false });
      reportError(err);
    }
  }

  /** Shows another view: the filters and the open payment go into the URL, so a link opens the same. */
  private show(patch: Partial<WalletView>): void {
    this.view = { ...this.view, ...patch };
    history.replaceState(null, '', walletHash(this.view));
    void this.load();
  }

  private select(w: WalletPayment): void {
    this.generation++;
    this.set({ selected: w, resolving: null, confirming: null });
    this.view = { ...this.view, payment: w.id };
    history.replaceState(null, '', walletHash(this.view));
  }

  private filter(e: SubmitEvent): void {
    e.preventDefault();
    const input = (e.target as HTMLFormElement).elements.namedItem('errorCode') as HTMLInputElement;
    const typed = input.value.trim();
    const errorCode = normalizeErrorCode(typed);
    if (typed && !errorCode) return notify('error', 'An error code is letters, digits and _ (e.g. ORDER_NOT_PROVEN)');
    input.value = errorCode;
    this.show({ errorCode });
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

  private openResolve(target: ResolutionTarget): void {
    this.set({ resolving: sameTarget(this.resolving, target) ? null : target, confirming: null });
  }

  /** The form's verdict, checked; shown for confirmation with its own Idempotency-Key. */
  private async review(e: SubmitEvent): Promise<void> {
    e.preventDefault();
    const p = this.selected;
    const target = this.resolving;
    if (!p || !target) return;
    const form = e.target as HTMLFormElement;
    const field = (name: string) => (form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement).value;
    const body = verdictBody(target, { state: field('state'), note: field('note'), billNumber: field('billNumber') });
    if ('problem' in body) return notify('error', body.problem);
    this.set({ confirming: { target, body, text: confirmationText(p, target, body), idempotencyKey: newIdempotencyKey() } });
    await this.updateComplete;
    this.querySelector<HTMLButtonElement>('[data-testid="confirm-resolution"]')?.focus();
  }

  private async confirm(): Promise<void> {
    const p = this.selected;
    const pending = this.confirming;
    if (!p || !pending) return;
    this.set({ busy: true });
    try {
      const { target, body, idempotencyKey } = pending;
      const next =
        target.kind === 'payment'
          ? await api.resolveWallet(p.id, body as Parameters<typeof api.resolveWallet>[1], idempotencyKey)
          : await api.resolveWalletOperation(p.id, target.operationId, body as Parameters<typeof api.resolveWalletOperation>[2], idempotencyKey);
      const what =
        target.kind === 'payment'
          ? `payment ${next.orderNumber} is ${next.state}`
          : `operation ${target.operationId.slice(0, 8)} is ${next.operations.find((o) => o.id === target.operationId)?.state ?? '?'}, payment ${next.orderNumber} is ${next.state}`;
      notify('info', `Resolved by hand: ${what}`);
      this.generation++;
      this.set({ selected: next, resolving: null, confirming: null });
      void this.load();
    } catch (err) {
      reportError(err);
      // The API refused this verdict (409: decided meanwhile, 422, 400): back to the form. Without an answer (the
      // network), it stays to be confirmed again with the same key, which the API answers once.
      if (err instanceof ApiError) this.set({ confirming: null });
    } finally {
      this.set({ busy: false });
    }
  }

  /** A person's verdict as the API returns it: who (as the audit log names them), when, what they checked, the billnumber. */
  private renderResolution(r: WalletResolution, label: string, testId: string) {
    return html`<dl class="kv resolution" aria-label=${label} data-testid=${testId}>
      <dt>Resolved by</dt>
      <dd>${r.by === 'human' ? 'a person' : r.by}: ${actorLabel(r.actor, shell.session?.keyId)}</dd>
      <dt>At</dt>
      <dd><time datetime=${r.at}>${new Date(r.at).toLocaleString()}</time></dd>
      <dt>Note</dt>
      <dd class="note">${r.note}</dd>
      <dt>Billnumber</dt>
      <dd>${r.billNumber ?? '—'}</dd>
    </dl>`;
  }

  private renderResolveForm(p: WalletPayment, target: ResolutionTarget) {
    const op = target.kind === 'operation' ? p.operations.find((o) => o.id === target.operationId) : undefined;
    const subject = op ? `${op.kind.replace(/_/g, ' ')} ${money(op.amount, op.currency)} of order ${p.orderNumber}` : `order ${p.orderNumber}`;
    const options = target.kind === 'payment' ? paymentVerdicts(p.twoStage) : OPERATION_VERDICTS;
    const pending = this.confirming;
    const error = (target.kind === 'payment' ? p.error : op?.error) ?? null;
    const hint = error ? walletErrorHint(error.code) : undefined;
    return html`<form class="resolve" aria-label="Resolve ${subject}" data-testid="resolve-form" @submit=${(e: SubmitEvent) => void this.review(e)}>
      <p>
        Resolve ${subject} by hand, after reading the order in Assist's back office (by order number <strong>${p.orderNumber}</strong>). A verdict is final and
        audited.
      </p>
      ${error ? html`<p class="hint" data-testid="resolve-hint"><strong>${error.code}</strong>: ${error.message}${hint ? html`<br />${hint.todo}` : nothing}</p>` : nothing}
      <fieldset ?disabled=${pending !== null || this.busy}>
        <label
          >True outcome
          <select name="state">
            ${options.map((o) => html`<option value=${o.value}>${o.label}</option>`)}
          </select></label
        >
        <label>What was checked <textarea name="note" required minlength="3" maxlength="1000"></textarea></label>
        <label
          >Billnumber (optional)
          <input name="billNumber" autocomplete="off" inputmode="decimal" pattern=${BILL_NUMBER_PATTERN[target.kind]} maxlength="40" />
        </label>
        <div class="actions">
          <button type="submit">Resolve</button>
          <button type="button" @click=${() => this.set({ resolving: null, confirming: null })}>Close</button>
        </div>
      </fieldset>
      ${
        pending
          ? html`<div class="confirm" role="group" aria-labelledby="confirm-text" data-testid="resolution-confirmation">
              <p id="confirm-text">${pending.text}</p>
              <button type="button" data-testid="confirm-resolution" ?disabled=${this.busy} @click=${() => void this.confirm()}>Confirm resolution</button>
              <button type="button" ?disabled=${this.busy} @click=${() => this.set({ confirming: null })}>Back</button>
            </div>`
          : nothing
      }
    </form>`;
  }

  private renderOperation(o: WalletOperation, canWrite: boolean) {
    return html`<tr data-wallet-operation=${o.id}>
      <td>${o.kind.replace(/_/g, ' ')}</td>
      <td>${money(o.amount, o.currency)}</td>
      <td>
        <span class="badge ${o.state === 'succeeded' ? 'approved' : o.state}" data-testid="wallet-operation-state">${o.state}</span>
        ${o.error && o.state !== 'succeeded' ? html`<small title=${walletErrorText(o.error.code)}>${o.error.code}</small>` : nothing}
      </td>
      <td>${o.resolution ? this.renderResolution(o.resolution, `Resolution of the ${o.kind.replace(/_/g, ' ')}`, 'wallet-operation-resolution') : '—'}</td>
      <td>${new Date(o.createdAt).toLocaleString()}</td>
      <td>
        ${
          o.state === 'unknown'
            ? html`<button
                type="button"
                ?disabled=${!canWrite || this.busy}
                title=${canWrite ? '' : 'Needs an operate or admin key'}
                aria-expanded=${sameTarget(this.resolving, { kind: 'operation', operationId: o.id })}
                @click=${() => this.openResolve({ kind: 'operation', operationId: o.id })}
              >
                Resolve…
              </button>`
            : nothing
        }
      </td>
    </tr>`;
  }

  override render() {
    const p = this.selected;
    const canWrite = may('wallet:write');
    const why = canWrite ? '' : 'Needs an operate or admin key';
    const v = this.view;
    return html`
      <h1 tabindex="-1">Wallet payments</h1>
      <form class="filters" aria-label="Filter wallet payments" @submit=${(e: SubmitEvent) => this.filter(e)}>
        <label
          >State
          <select @change=${(e: Event) => this.show({ state: (e.target as HTMLSelectElement).value as WalletView['state'] })}>
            <option value="">any</option>
            ${WALLET_STATES.map((s) => html`<option value=${s} ?selected=${s === v.state}>${s}</option>`)}
          </select></label
        >
        <label
          >Operation state
          <select @change=${(e: Event) => this.show({ operationState: (e.target as HTMLSelectElement).value as WalletView['operationState'] })}>
            <option value="">any</option>
            ${WALLET_OPERATION_STATES.map((s) => html`<option value=${s} ?selected=${s === v.operationState}>${s}</option>`)}
          </select></label
        >
        <label
          >Error code
          <input
            name="errorCode"
            .value=${v.errorCode}
            list="wallet-error-codes"
            autocomplete="off"
            placeholder="ORDER_NOT_PROVEN"
            pattern="[A-Za-z][A-Za-z0-9_]{0,63}"
            maxlength="64"
          />
        </label>
        <datalist id="wallet-error-codes">
          ${WALLET_ERROR_SUGGESTIONS.map((c) => html`<option value=${c} label=${`${WALLET_ERROR_HINTS[c].person ? 'needs a person: ' : ''}${WALLET_ERROR_HINTS[c].means}`}></option>`)}
        </datalist>
        <button type="submit">Filter</button>
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
                    html`<tr data-wallet-payment=${w.id}>
                      <td><button type="button" class="link" @click=${() => this.select(w)}>${w.orderNumber}</button></td>
                      <td>${money(w.amount, w.currency)}</td>
                      <td>
                        <span class="badge ${w.state}">${w.state}</span>
                        ${w.error ? html`<small title=${walletErrorText(w.error.code)}>${w.error.code}</small>` : nothing}
                        ${w.operations.some((o) => o.state === 'unknown') ? html`<small>an operation is unknown</small>` : nothing}
                        ${w.resolution || w.operations.some((o) => o.resolution) ? html`<small>resolved by hand</small>` : nothing}
                      </td>
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
                <dd>${money(p.amount, p.currency)}${p.twoStage ? ' (two-stage)' : ''}</dd>
                <dt>Authorised / captured / released / refunded</dt>
                <dd>${money(p.amounts.authorized)} / ${money(p.amounts.captured)} / ${money(p.amounts.released)} / ${money(p.amounts.refunded)}</dd>
                <dt>Card</dt>
                <dd>${p.maskedPan ?? '—'}</dd>
                <dt>Assist order</dt>
                <dd>${p.assist ? `${p.assist.billNumber} (${p.assist.orderState}, from ${p.assist.source})` : '—'}</dd>
                <dt>Error</dt>
                <dd data-testid="wallet-error">${p.error ? `${p.error.code}: ${p.error.message}` : '—'}</dd>
                ${p.error && walletErrorHint(p.error.code) ? html`<dd class="hint" data-testid="wallet-error-hint">${walletErrorText(p.error.code)}</dd>` : nothing}
                ${
                  p.state === 'unknown'
                    ? html`<dt>Resolution attempts</dt>
                        <dd>${p.resolutionAttempts}</dd>`
                    : nothing
                }
              </dl>
              ${
                p.resolution
                  ? html`<h3>Resolved by hand</h3>
                      ${this.renderResolution(p.resolution, `Resolution of order ${p.orderNumber}`, 'wallet-resolution')}`
                  : nothing
              }
              ${
                p.state === 'unknown'
                  ? html`<div class="actions">
                      <button
                        type="button"
                        ?disabled=${!canWrite || this.busy}
                        title=${why}
                        aria-expanded=${sameTarget(this.resolving, { kind: 'payment' })}
                        @click=${() => this.openResolve({ kind: 'payment' })}
                      >
                        Resolve payment…
                      </button>
                    </div>`
                  : nothing
              }
              ${this.resolving?.kind === 'payment' ? this.renderResolveForm(p, this.resolving) : nothing}
              ${
                p.operations.length
                  ? html`<table class="grid" aria-label="Operations on order ${p.orderNumber}" data-testid="wallet-operations">
                      <thead>
                        <tr>
                          <th scope="col">Operation</th>
                          <th scope="col">Amount</th>
                          <th scope="col">State</th>
                          <th scope="col">Resolution</th>
                          <th scope="col">When</th>
                          <th scope="col"><span class="sr-only">Actions</span></th>
                        </tr>
                      </thead>
                      <tbody>
                        ${p.operations.map((o) => this.renderOperation(o, canWrite))}
                      </tbody>
                    </table>`
                  : nothing
              }
              ${this.resolving?.kind === 'operation' ? this.renderResolveForm(p, this.resolving) : nothing}
              <form class="filters" @submit=${(e: SubmitEvent) => e.preventDefault()}>
                <label>Amount (empty = all) <input name="amount" inputmode="decimal" autocomplete="off" /></label>
                <button
                  type="button"
                  ?disabled=${!canWrite || this.busy || !p.twoStage}
                  title=${why}
                  @click=${(e: Event) => this.act('capture', (e.target as HTMLElement).closest('form')!)}
                >
                  Capture
                </button>
                <button
                  type="button"
                  ?disabled=${!canWrite || this.busy}
                  title=${why}
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
