import { html, nothing } from 'lit';

import { api, type Operation } from '../api';
import { ConsoleElement } from '../base';
import type { LiveEvent } from '../events';
import { FINAL_STATES, may, money, notify, reportError, shell, timelines } from '../state';

const MONEY_BACK_TYPES = new Set(['purchase', 'purchase_with_cashback']);

/** What the latest progress event says: waiting for card / PIN, host connection, display text, SBP QR. */
function progressOf(events: readonly LiveEvent[]): string | null {
  for (let i = events.length - 1; i >= 0; i--) {
    const d = events[i]!.data;
    if (events[i]!.type !== 'operation.progress' || !d.progress) continue;
    if (d.progress === 'qr') return `SBP QR ${String(d.action ?? '')}${d.url ? `: ${String(d.url)}` : ''}`;
    if (d.progress === 'display') return `Terminal shows: ${String(d.text ?? '')}`;
    return [d.subStatus, d.text].filter(Boolean).join(' — ') || null;
  }
  return null;
}

/**
 * One operation, followed live: state, progress, result, its timeline of events, and the actions an ops
 * person takes (cancel, refund, void, resolve an `unknown`). Actions the key cannot do are disabled with
 * the reason; the API's 403 is shown if one still happens.
 */
export class OperationCard extends ConsoleElement {
  operation!: Operation;
  expanded = false;
  resolving = false;
  busy = false;
  private unsubscribe?: () => void;

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = shell.stream.onEvent((e) => {
      if (e.type.startsWith('operation.') && e.data.operationId === this.operation?.id) void this.refresh();
    });
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  private async refresh(): Promise<void> {
    const id = this.operation.id;
    try {
      const operation = await api.operation(id);
      // The element may have been given another operation meanwhile.
      if (this.operation.id === id) this.set({ operation });
    } catch (err) {
      reportError(err);
    }
  }

  private async act(label: string, run: () => Promise<Operation>): Promise<void> {
    this.set({ busy: true });
    try {
      const op = await run();
      notify('info', `${label}: operation ${op.id.slice(0, 8)} is ${op.state}`);
      this.dispatchEvent(new CustomEvent('operation-started', { detail: op, bubbles: true }));
      await this.refresh();
    } catch (err) {
      reportError(err);
    } finally {
      this.set({ busy: false });
    }
  }

  private resolve(e: SubmitEvent): void {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const state = (form.elements.namedItem('state') as HTMLSelectElement).value as 'approved' | 'declined' | 'failed';
    const note = (form.elements.namedItem('note') as HTMLTextAreaElement).value;
    void this.act('Resolved', () => api.resolveOperation(this.operation.id, state, note)).then(() => this.set({ resolving: false }));
  }

  override render() {
    const op = this.operation;
    if (!op) return nothing;
    const events = timelines.get(op.id) ?? [];
    const progress = FINAL_STATES.has(op.state) ? null : progressOf(events);
    const canOperate = may('operations:write');
    const why = canOperate ? '' : 'Needs an operate or admin key';
    const moneyBack = op.state === 'approved' && MONEY_BACK_TYPES.has(op.type);
    return html`
      <article class="op state-${op.state}" data-operation=${op.id} aria-labelledby="op-${op.id}">
        <header>
          <h3 id="op-${op.id}">
            ${op.type.replace(/_/g, ' ')} ${money(op.amount, op.currency)}
            <span class="badge ${op.state}" data-testid="op-state">${op.state}</span>
          </h3>
          <small>
            <a href="#/terminals/${op.terminalId}">terminal ${op.terminalId.slice(0, 8)}</a> · ${new Date(op.createdAt).toLocaleTimeString()} · id
            ${op.id.slice(0, 8)} ${op.originalOperationId ? html` · for ${op.originalOperationId.slice(0, 8)}` : nothing}
          </small>
        </header>
        ${progress ? html`<p class="progress" aria-live="polite" data-testid="op-progress">${progress}</p>` : nothing}
        ${
          FINAL_STATES.has(op.state) || op.state === 'unknown'
            ? html`<p class="result" data-testid="op-result">
                ${
                  [
                    op.maskedPan,
                    op.approvalCode && `auth ${op.approvalCode}`,
                    op.rrn && `RRN ${op.rrn}`,
                    op.responseCode && `code ${op.responseCode}`,
                    op.responseMessage ?? op.stateReason,
                  ]
                    .filter(Boolean)
                    .join(' · ') || op.state
                }
              </p>`
            : nothing
        }
        <div class="actions">
          ${
            !FINAL_STATES.has(op.state) && op.state !== 'unknown'
              ? html`<button
                  type="button"
                  ?disabled=${!canOperate || this.busy}
                  title=${why}
                  @click=${() => this.act('Cancel', () => api.cancelOperation(op.id))}
                >
                  Cancel
                </button>`
              : nothing
          }
          ${
            moneyBack
              ? html`<button
                    type="button"
                    ?disabled=${!canOperate || this.busy}
                    title=${why}
                    @click=${() => this.act('Refund', () => api.startOperation(op.terminalId, { type: 'refund', amount: op.amount ?? undefined, currency: op.currency ?? undefined, originalOperationId: op.id }))}
                  >
                    Refund
                  </button>
                  <button
                    type="button"
                    ?disabled=${!canOperate || this.busy}
                    title=${why}
                    @click=${() => this.act('Void', () => api.startOperation(op.terminalId, { type: 'void', originalOperationId: op.id }))}
                  >
                    Void
                  </button>`
              : nothing
          }
          ${
            op.state === 'unknown'
              ? html`<button type="button" ?disabled=${!canOperate} title=${why} @click=${() => this.set({ resolving: !this.resolving })}>Resolve…</button>`
              : nothing
          }
          <button type="button" aria-expanded=${this.expanded} @click=${() => this.set({ expanded: !this.expanded })}>Timeline (${events.length})</button>
        </div>
        ${
          this.resolving
            ? html`<form class="resolve" @submit=${(e: SubmitEvent) => this.resolve(e)}>
                <label
                  >True outcome
                  <select name="state">
                    <option>approved</option>
                    <option>declined</option>
                    <option>failed</option>
                  </select></label
                >
                <label>What was checked <textarea name="note" required minlength="3" maxlength="1000"></textarea></label>
                <button type="submit" ?disabled=${this.busy}>Resolve</button>
              </form>`
            : nothing
        }
        ${
          this.expanded
            ? html`<ol class="timeline" aria-label="Timeline of operation ${op.id.slice(0, 8)}">
                ${events.length === 0 ? html`<li>No live event seen since sign-in.</li>` : nothing}
                ${events.map(
                  (e) =>
                    html`<li>
                      <time datetime=${e.createdAt}>${new Date(e.createdAt).toLocaleTimeString()}</time> <strong>${e.type}</strong>
                      <code
                        >${JSON.stringify({ state: e.data.state, subStatus: e.data.subStatus, progress: e.data.progress, text: e.data.text, frame: e.data.frame })}</code
                      >
                    </li>`,
                )}
              </ol>`
            : nothing
        }
      </article>
    `;
  }
}
