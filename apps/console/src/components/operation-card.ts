import { html, nothing } from 'lit';

import { api, type Operation, type OperationEvent } from '../api';
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

/** `pending → approved`, or the step's kind alone when it changed no state. */
const stepTitle = (s: OperationEvent) => (s.toState ? `${s.fromState ?? '∅'} → ${s.toState}` : s.kind.replace(/_/g, ' '));

/** `→` we sent it to the terminal, `←` the terminal sent it (none: the note on frames not journaled). */
const FRAME_ARROWS: Readonly<Record<string, string>> = { out: '→ terminal', in: '← terminal' };

/**
 * A `frame` step (docs/operations.md): direction and what it is on the line, the masked content folded in a
 * monospace block. The content is already masked by the connector (and masked again by the API).
 */
function frameStep(s: OperationEvent) {
  const d = s.data ?? {};
  const arrow = FRAME_ARROWS[String(d.direction)] ?? '·';
  return html`<li data-kind="frame" data-direction=${String(d.direction ?? 'none')}>
    <time datetime=${s.createdAt}>${new Date(s.createdAt).toLocaleTimeString()}</time>
    <strong class="frame-direction" aria-label=${d.direction === 'out' ? 'sent to the terminal' : d.direction === 'in' ? 'from the terminal' : 'note'}
      >${arrow}</strong
    >
    <span class="frame-summary">${String(d.summary ?? 'frame')}</span>
    <details>
      <summary>masked frame</summary>
      <pre class="frame-masked">${String(d.masked ?? '')}</pre>
    </details>
  </li>`;
}

/**
 * One operation, followed live: state, progress, result, its timeline (the steps recorded by the API,
 * GET /v1/operations/{id}/events, with their masked data), and the actions an ops person takes (cancel,
 * refund, void, resolve an `unknown`). Actions the key cannot do are disabled with the reason; the API's
 * 403 is shown if one still happens.
 */
export class OperationCard extends ConsoleElement {
  operation!: Operation;
  expanded = false;
  resolving = false;
  busy = false;
  /** The recorded steps, loaded when the timeline is opened and again on each live event of the operation. */
  steps: OperationEvent[] | null = null;
  private unsubscribe?: () => void;

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = shell.stream.onEvent((e) => {
      if (e.type.startsWith('operation.') && e.data.operationId === this.operation?.id) void this.refresh();
    });
    // Subscribed first, then read once: the events of an operation not final yet may have gone by between the read
    // the card was made from and now (a card made from a read answered after the operation's last event stayed at
    // that read's state).
    if (this.operation && !FINAL_STATES.has(this.operation.state)) void this.refresh();
  }

  private async toggleTimeline(): Promise<void> {
    this.set({ expanded: !this.expanded });
    if (this.expanded) await this.loadSteps();
  }

  private async loadSteps(): Promise<void> {
    const id = this.operation.id;
    try {
      const steps = await api.operationEvents(id);
      if (this.operation.id === id) this.set({ steps });
    } catch (err) {
      reportError(err);
    }
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
      if (this.expanded) await this.loadSteps();
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
    const field = (name: string) => (form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement).value.trim();
    const verdict = {
      state: field('state') as 'approved' | 'declined' | 'failed',
      note: field('note'),
      // What the journal or the bank shows; the API refuses an approval code unless approved, an RRN when failed.
      ...(field('rrn') ? { rrn: field('rrn') } : {}),
      ...(field('approvalCode') ? { approvalCode: field('approvalCode') } : {}),
    };
    void this.act('Resolved', () => api.resolveOperation(this.operation.id, verdict)).then(() => this.set({ resolving: false }));
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
          <button type="button" aria-expanded=${this.expanded} aria-controls="timeline-${op.id}" @click=${() => this.toggleTimeline()}>
            Timeline${this.steps ? ` (${this.steps.length})` : ''}
          </button>
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
                <label>RRN (optional) <input name="rrn" autocomplete="off" pattern="[0-9A-Za-z]{1,24}" maxlength="24" /></label>
                <label>Approval code (optional) <input name="approvalCode" autocomplete="off" pattern="[0-9A-Za-z]{1,12}" maxlength="12" /></label>
                <button type="submit" ?disabled=${this.busy}>Resolve</button>
              </form>`
            : nothing
        }
        ${
          this.expanded
            ? html`<ol class="timeline" id="timeline-${op.id}" aria-label="Timeline of operation ${op.id.slice(0, 8)}" aria-busy=${this.steps === null}>
                ${this.steps === null ? html`<li>Loading…</li>` : nothing}
                ${(this.steps ?? []).map((s) =>
                  s.kind === 'frame'
                    ? frameStep(s)
                    : html`<li data-kind=${s.kind}>
                        <time datetime=${s.createdAt}>${new Date(s.createdAt).toLocaleTimeString()}</time> <strong>${stepTitle(s)}</strong>
                        ${s.toState ? html`<small>${s.kind.replace(/_/g, ' ')}</small>` : nothing}
                        ${s.data ? html`<code>${JSON.stringify(s.data)}</code>` : nothing}
                      </li>`,
                )}
              </ol>`
            : nothing
        }
      </article>
    `;
  }
}
