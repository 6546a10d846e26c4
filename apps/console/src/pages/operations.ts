import { html, nothing } from 'lit';
import { repeat } from 'lit/directives/repeat.js';

import { api, type Operation, type OperationState } from '../api';
import { ConsoleElement } from '../base';
import { reportError, shell } from '../state';

const STATES: readonly OperationState[] = ['pending', 'sent', 'in_progress', 'approved', 'declined', 'canceled', 'failed', 'unknown'];

/** Live operations: the newest operations of the tenant, new ones added as the stream announces them. */
export class OperationsPage extends ConsoleElement {
  operations: Operation[] = [];
  state: OperationState | '' = '';
  loading = true;
  private unsubscribe?: () => void;

  override connectedCallback(): void {
    super.connectedCallback();
    this.unsubscribe = shell.stream.onEvent((e) => {
      if (e.type === 'operation.created' && typeof e.data.operationId === 'string') void this.add(e.data.operationId);
    });
    void this.load();
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.unsubscribe?.();
  }

  private async load(): Promise<void> {
    try {
      const page = await api.operations({ state: this.state || undefined });
      this.set({ operations: page.data, loading: false });
    } catch (err) {
      this.set({ loading: false });
      reportError(err);
    }
  }

  private async add(id: string): Promise<void> {
    if (this.operations.some((o) => o.id === id)) return;
    try {
      const op = await api.operation(id);
      if (this.state && op.state !== this.state) return;
      if (!this.operations.some((o) => o.id === id)) this.set({ operations: [op, ...this.operations].slice(0, 200) });
    } catch (err) {
      reportError(err);
    }
  }

  override render() {
    return html`
      <h1 tabindex="-1">Live operations</h1>
      <form class="filters" aria-label="Filter operations" @submit=${(e: Event) => e.preventDefault()}>
        <label
          >State
          <select
            @change=${(e: Event) => {
              this.set({ state: (e.target as HTMLSelectElement).value as OperationState | '', loading: true });
              void this.load();
            }}
          >
            <option value="">any</option>
            ${STATES.map((s) => html`<option value=${s}>${s.replace('_', ' ')}</option>`)}
          </select></label
        >
      </form>
      ${this.loading ? html`<p aria-live="polite">Loading…</p>` : nothing}
      ${!this.loading && this.operations.length === 0 ? html`<p>No operation yet.</p>` : nothing}
      <section aria-label="Operations" class="ops" @operation-started=${(e: CustomEvent<Operation>) => void this.add(e.detail.id)}>
        ${repeat(
          this.operations,
          (op) => op.id,
          (op) => html`<po-operation .operation=${op}></po-operation>`,
        )}
      </section>
    `;
  }
}
